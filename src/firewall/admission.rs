//! Connection admission: what a listener decides about a new connection
//! before any TLS or HTTP work, in this order:
//!
//! 1. the PROXY protocol header, when the listener expects one: only from a
//!    trusted proxy, read within the handshake timeout; it names the client;
//! 2. bans (a banned client is closed at once);
//! 3. the listener's allow/deny list (a refusal counts towards a ban);
//! 4. per-client connection limits (the slot is held for the connection's
//!    life).
//!
//! Each refusal is counted on the listener and, for 2–4, recorded as a
//! firewall event. Exposes [`ConnFilter`], [`Admitted`] and [`Refused`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::AsyncRead;

use super::bans::Bans;
use super::cidr::CidrSet;
use super::conn_limits::{ConnLimits, ConnSlot};
use super::events::Events;
use super::proxy_protocol::{read_header, ProxyHeaderError};
use crate::stats::ListenerStats;

/// One listener's admission settings and the shared state they consult.
#[derive(Debug)]
pub struct ConnFilter {
    /// Who may connect (empty: everyone).
    pub clients: CidrSet,
    /// Connections start with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Peers whose PROXY header (and `X-Forwarded-For`) is believed.
    pub trusted: Arc<[IpNet]>,
    pub bans: Arc<Bans>,
    /// None: no per-client limits.
    pub limits: Option<Arc<ConnLimits>>,
    pub events: Arc<Events>,
    /// The listener's counters (refusals).
    pub stats: Arc<ListenerStats>,
}

/// A connection let in.
#[derive(Debug)]
pub struct Admitted {
    /// The client: the socket's peer, or what a trusted proxy announced.
    pub client: SocketAddr,
    /// The socket's peer is a trusted proxy.
    pub via_trusted: bool,
    /// The per-client connection slot, held while the connection lives.
    pub slot: Option<ConnSlot>,
}

/// Why a connection was closed at admission.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("PROXY protocol header from an untrusted peer")]
    UntrustedProxy,
    #[error("{0}")]
    ProxyHeader(#[from] ProxyHeaderError),
    #[error("no PROXY protocol header within the handshake timeout")]
    ProxyHeaderTimeout,
    #[error("banned client")]
    Banned,
    #[error("refused by the listener's allow/deny list")]
    NotAllowed,
    #[error("per-client connection limit reached")]
    ConnLimit,
}

impl ConnFilter {
    /// Decides about a new connection from `peer`, reading the PROXY header
    /// from `stream` when the listener expects one.
    pub async fn admit<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        header_timeout: Duration,
    ) -> Result<Admitted, Refused> {
        let trusted = self.trusted.iter().any(|n| n.contains(&peer.ip()));
        let client = if self.proxy_protocol {
            if !trusted {
                self.stats.refused.fetch_add(1, Relaxed);
                return Err(Refused::UntrustedProxy);
            }
            // Boxed: only listeners behind a proxy read a header, and the
            // read would otherwise size every connection's task.
            match Box::pin(tokio::time::timeout(header_timeout, read_header(stream))).await {
                Ok(announced) => announced?.unwrap_or(peer),
                Err(_) => return Err(Refused::ProxyHeaderTimeout),
            }
        } else {
            peer
        };
        self.admit_client(client, trusted)
    }

    /// The checks on the client's address alone (bans, allow/deny list,
    /// per-client limits): what a QUIC listener runs on a connection's
    /// first Initial packet, before any handshake work.
    pub fn admit_client(&self, client: SocketAddr, trusted: bool) -> Result<Admitted, Refused> {
        let ip = client.ip();
        let refusal = if self.bans.refuses(ip) {
            Some((Refused::Banned, "accept filter", "connection (banned)"))
        } else if !self.clients.is_empty() && !self.clients.allows(ip) {
            // One atomic load when no ban policy is set.
            self.bans
                .violation(ip, "refused by the listener's allow/deny list");
            Some((
                Refused::NotAllowed,
                "accept filter",
                "connection (allow/deny list)",
            ))
        } else {
            None
        };
        let slot = match (refusal, &self.limits) {
            (Some(r), _) => Err(r),
            (None, None) => Ok(None),
            (None, Some(l)) => {
                l.admit(ip)
                    .map(Some)
                    .ok_or((Refused::ConnLimit, "connection limit", "connection"))
            }
        };
        match slot {
            Ok(slot) => Ok(Admitted {
                client,
                via_trusted: trusted,
                slot,
            }),
            Err((why, rule, what)) => {
                self.stats.refused.fetch_add(1, Relaxed);
                self.events.record(ip, rule, "close", what);
                Err(why)
            }
        }
    }
}
