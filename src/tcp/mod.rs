//! TCP mode (`mode = "tcp"` listeners): each connection, once admitted
//! (and past TLS on https listeners), is relayed to a server of the
//! listener's pool, bytes copied both ways without interpretation. A half
//! close on one side is passed to the other; a server that cannot be
//! reached within the connect timeout is skipped for another. The pool's
//! algorithm picks the server (`least_requests` counts open connections;
//! `hash` on the client address); `send_proxy` announces the client to the
//! server with a PROXY protocol header.
//!
//! Database endpoints narrow the choice by what the pool's `mysql` check
//! found ([`choose`]): a `writer` listener uses only the single writable
//! primary (and closes its sessions to a server that stops being it), a
//! `reader` listener the replicas within `max_lag`.
//!
//! Plain sessions move their bytes with `splice(2)` ([`splice`]), in the
//! kernel; sessions on TLS listeners copy through two 8 KiB buffers
//! ([`copy`]). A session ends when both sides have closed, when no byte moves either
//! way for `timeouts.tcp_idle`, or `timeouts.drain` after its listener was
//! closed or its server left the configuration (a reload).
//!
//! Exposes [`relay`], [`is_tcp`], [`Client`], [`Session`], [`copy`] and [`splice`].

mod choose;
pub mod copy;
pub mod splice;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::balancer::{Backend, DbRole, PickInput};
use crate::config::model::{DbEndpoint, ProxyVersion};
use crate::firewall::proxy_protocol;
use crate::listener::Counting;
use crate::listener::DrainWatch;
use crate::runtime::Runtime;
use copy::{copy_until_idle, Moved};
use splice::splice_until_idle;

/// Whether the listener at `slot` relays TCP.
pub fn is_tcp(runtime: &ArcSwap<Runtime>, slot: usize) -> bool {
    matches!(runtime.load().listeners.get(slot), Some(Some(l)) if l.tcp_pool.is_some())
}

/// A client connection as TCP mode relays it.
pub trait Client: AsyncRead + AsyncWrite + Unpin {
    /// The plain socket, when nothing (TLS) stands between it and the
    /// bytes: then they move by `splice(2)`.
    fn socket(&self) -> Option<&TcpStream> {
        None
    }

    /// Counts bytes that moved by splice, past the stream's own counters.
    fn spliced(&mut self, _up: u64, _down: u64) {}

    /// The address the client connected to (for a PROXY header).
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
}

impl Client for Counting<TcpStream> {
    fn socket(&self) -> Option<&TcpStream> {
        Some(self.get_ref())
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.get_ref().local_addr()
    }

    fn spliced(&mut self, up: u64, down: u64) {
        self.add(up, down);
    }
}

impl Client for tokio_rustls::server::TlsStream<Counting<TcpStream>> {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.get_ref().0.get_ref().local_addr()
    }
}

/// Relays `client` (of the listener at `slot`) to a server of the
/// listener's pool until the session ends. `peer` is the client as
/// admitted (a trusted proxy's PROXY header may have named it).
pub async fn relay<C: Client>(
    mut client: C,
    runtime: &Arc<ArcSwap<Runtime>>,
    slot: usize,
    peer: SocketAddr,
    drain: DrainWatch,
) {
    let rt = runtime.load_full();
    let Some(Some(l)) = rt.listeners.get(slot) else {
        return;
    };
    let Some(pool) = l.tcp_pool.as_deref().and_then(|p| rt.pool(p)) else {
        return;
    };
    let headers = http::HeaderMap::new();
    let input = PickInput {
        client_ip: peer.ip(),
        headers: &headers,
    };
    let mut avoid = Vec::new();
    for _ in 0..=pool.retries {
        let (server, index) = match choose::choose(pool, l.db_endpoint, &input, &avoid) {
            Ok(pick) => pick,
            Err(why) => {
                l.stats
                    .tcp
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(listener = %l.name, pool = %pool.name, client = %peer, "connection closed: {why}");
                return;
            }
        };
        avoid.push(index);
        // Counted in flight for as long as the connection lasts.
        let _open = server.begin();
        let connected = tokio::time::timeout(rt.timeouts.connect, TcpStream::connect(server.addr)).await;
        let mut upstream = match connected {
            Ok(Ok(s)) => s,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", rt.timeouts.connect),
                };
                for s in [&server.stats.tcp, &l.stats.tcp] {
                    s.connect_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::debug!(server = %server.name, "TCP connect failed ({why}): trying another server");
                continue;
            }
        };
        let _ = upstream.set_nodelay(true);
        if let Some(v) = l.send_proxy {
            let local = match client.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(listener = %l.name, error = %e, "no local address for the PROXY header");
                    return;
                }
            };
            let header = match v {
                ProxyVersion::V1 => proxy_protocol::v1_header(peer, local),
                ProxyVersion::V2 => proxy_protocol::v2_header(peer, local),
            };
            if let Err(e) = upstream.write_all(&header).await {
                tracing::debug!(server = %server.name, error = %e, "sending the PROXY header failed");
                return;
            }
        }
        let (_s, _l) = (server.stats.tcp.open(), l.stats.tcp.open());
        let started = Instant::now();
        let moved = Moved::default();
        let ends = ended_by_us(&server, l.db_endpoint, drain, rt.timeouts.drain);
        let idle = rt.timeouts.tcp_idle;
        let spliced = client.socket().is_some();
        let result = match client.socket() {
            Some(socket) => tokio::select! {
                r = splice_until_idle(socket, &upstream, idle, &moved) => r.map_err(|e| e.to_string()),
                why = ends => Err(why),
            },
            None => tokio::select! {
                r = copy_until_idle(&mut client, &mut upstream, idle, &moved) => r.map_err(|e| e.to_string()),
                why = ends => Err(why),
            },
        };
        let (up, down) = (
            moved.up.load(std::sync::atomic::Ordering::Relaxed),
            moved.down.load(std::sync::atomic::Ordering::Relaxed),
        );
        if spliced {
            client.spliced(up, down);
        }
        for s in [&server.stats.tcp, &l.stats.tcp] {
            s.ended(up, down, started.elapsed());
        }
        match result {
            Ok(()) => {
                tracing::debug!(server = %server.name, bytes_up = up, bytes_down = down, "TCP session ended")
            }
            Err(why) => {
                tracing::debug!(server = %server.name, bytes_up = up, bytes_down = down, "TCP session closed: {why}")
            }
        }
        return;
    }
    tracing::info!(listener = %l.name, pool = %pool.name, client = %peer, "connection closed: no server accepted it");
}

/// Resolves (with the reason) when rampart must close a session to
/// `server`: on a writer endpoint once the server is no longer the primary,
/// and `drain` after the listener was closed or the server retired.
async fn ended_by_us(
    server: &Arc<Backend>,
    endpoint: Option<DbEndpoint>,
    mut listener: DrainWatch,
    drain: Duration,
) -> String {
    let demoted = async {
        if endpoint != Some(DbEndpoint::Writer) {
            return std::future::pending().await;
        }
        let mut w = server.db.watch();
        let _ = w.wait_for(|s| s.role != DbRole::Primary).await;
        let why = w.borrow().reason.clone();
        format!("the server is no longer the writable primary ({why})")
    };
    let leaving = async {
        let mut retired = server.retirement();
        tokio::select! {
            _ = listener.signalled() => {}
            _ = retired.wait_for(|r| *r) => {}
        }
        tokio::time::sleep(drain).await;
        format!("its listener or server left the configuration {drain:?} ago")
    };
    tokio::select! {
        why = demoted => why,
        why = leaving => why,
    }
}
