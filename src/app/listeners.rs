//! The running listeners: each has a stable slot in the [`Runtime`], its
//! own drain (so a reload can close one while the others keep their
//! connections), and for TLS a swappable acceptor (so certificates reload
//! without a new socket).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::{AppError, Bound};
use crate::config::model::{self, ListenerKind};
use crate::firewall::proxy_protocol::read_header;
use crate::listener::{accept_loop, bind, Counting, Drain};
use crate::proxy::server::{self, Builders};
use crate::proxy::ConnCtx;
use crate::runtime::Runtime;
use crate::stats::ListenerStats;
use crate::tls::{self, LoadedCert};
use std::sync::atomic::Ordering::Relaxed;

/// One listening socket and its accept loop.
#[derive(Debug)]
pub struct ListenerHandle {
    pub name: String,
    /// The address in the config (port 0 stays 0 here).
    pub configured: SocketAddr,
    /// The address really bound.
    pub addr: SocketAddr,
    pub slot: usize,
    /// The TLS configuration, swapped in place when certificates reload.
    pub acceptor: Option<Arc<ArcSwap<ServerConfig>>>,
    drain: Drain,
    task: Option<JoinHandle<()>>,
}

/// A bound socket not yet serving.
#[derive(Debug)]
pub struct Pending {
    pub socket: TcpListener,
    pub handle: ListenerHandle,
}

impl ListenerHandle {
    pub fn bound(&self) -> Bound {
        Bound {
            name: self.name.clone(),
            addr: self.addr,
            scheme: if self.acceptor.is_some() { "https" } else { "http" },
        }
    }

    /// Does this running listener serve what `l` describes (same address and protocol)?
    pub fn serves(&self, l: &model::Listener) -> bool {
        (self.configured == l.addr || self.addr == l.addr)
            && self.acceptor.is_some() == matches!(l.kind, ListenerKind::Https(_))
    }

    /// Stops accepting and lets its connections finish, for up to `timeout`.
    pub fn close(mut self, timeout: std::time::Duration) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        tokio::spawn(async move {
            if tokio::time::timeout(timeout, self.drain.drain()).await.is_err() {
                tracing::warn!(listener = %self.name, "connections still open after the drain timeout");
            }
        });
    }

    /// Stops accepting and waits for its connections, for up to `timeout`.
    pub async fn shutdown(mut self, timeout: std::time::Duration) -> bool {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        tokio::time::timeout(timeout, self.drain.drain()).await.is_ok()
    }
}

/// The TLS acceptor for an https listener: its certificates, or the local
/// certificate (created on first use) when it has none.
pub fn acceptor_for(
    l: &model::Listener,
    m: &model::Model,
    local: &mut Option<(std::path::PathBuf, Arc<LoadedCert>)>,
) -> Result<Option<Arc<ServerConfig>>, AppError> {
    let ListenerKind::Https(s) = &l.kind else {
        return Ok(None);
    };
    let certs = if s.certs.is_empty() {
        if !m.generate_local_ca {
            return Err(AppError::NoCertificate(l.name.clone()));
        }
        if local.is_none() {
            let lc = tls::ca::ensure_local_cert(&m.state_dir)?;
            if lc.created {
                tracing::info!(ca = %lc.ca_path.display(), "created a local CA and a localhost certificate");
            }
            *local = Some((lc.ca_path, Arc::new(lc.cert)));
        }
        local.iter().map(|(_, c)| c.clone()).collect()
    } else {
        // The pairs were checked at load; this parses the same bytes again.
        s.certs
            .iter()
            .map(|c| LoadedCert::from_spec(c).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?
    };
    for c in &certs {
        for p in c.spec.problems() {
            tracing::warn!(listener = %l.name, "{p}");
        }
    }
    Ok(Some(tls::server_config(&certs, s.http2)?))
}

/// Binds a listener's socket (nothing is served yet).
pub fn bind_listener(
    l: &model::Listener,
    slot: usize,
    acceptor: Option<Arc<ServerConfig>>,
) -> Result<Pending, AppError> {
    let socket = bind(l.addr).map_err(|source| AppError::Bind {
        what: format!("listener `{}`", l.name),
        addr: l.addr,
        source,
    })?;
    let addr = socket.local_addr().unwrap_or(l.addr);
    let (drain, _) = Drain::new();
    Ok(Pending {
        socket,
        handle: ListenerHandle {
            name: l.name.clone(),
            configured: l.addr,
            addr,
            slot,
            acceptor: acceptor.map(|a| Arc::new(ArcSwap::new(a))),
            drain,
            task: None,
        },
    })
}

/// Starts serving a bound listener.
pub fn start(
    b: Pending,
    runtime: Arc<ArcSwap<Runtime>>,
    builders: Arc<ArcSwap<Builders>>,
    stats: Arc<ListenerStats>,
) -> ListenerHandle {
    let Pending { socket, mut handle } = b;
    let watch = handle.drain.watch();
    let (slot, acceptor, w0) = (handle.slot, handle.acceptor.clone(), watch.clone());
    handle.task = Some(tokio::spawn(accept_loop(
        socket,
        watch,
        move |mut stream, peer| {
            let (w, b) = (w0.clone(), builders.load_full());
            let acceptor = acceptor.as_ref().map(|a| TlsAcceptor::from(a.load_full()));
            let handshake_timeout = b.client_idle();
            let (stats, runtime) = (stats.clone(), runtime.clone());
            async move {
                // Who the client is: the socket's peer, or what a trusted
                // proxy's PROXY header says.
                let (client, via_trusted) = {
                    let rt = runtime.load();
                    let trusted = rt.trusted_proxies.iter().any(|n| n.contains(&peer.ip()));
                    let expects_header = rt
                        .listeners
                        .get(slot)
                        .and_then(Option::as_ref)
                        .is_some_and(|l| l.proxy_protocol);
                    drop(rt);
                    if expects_header {
                        if !trusted {
                            stats.refused.fetch_add(1, Relaxed);
                            tracing::debug!(%peer, "PROXY protocol from an untrusted peer: connection closed");
                            return;
                        }
                        match tokio::time::timeout(handshake_timeout, read_header(&mut stream)).await {
                            Ok(Ok(announced)) => (announced.unwrap_or(peer), true),
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, "{e}");
                                return;
                            }
                            Err(_) => return,
                        }
                    } else {
                        (peer, trusted)
                    }
                };
                // Bans and the CIDR filter, before any TLS work. A refusal by
                // the CIDR filter is a violation towards a ban (one atomic
                // load when no ban policy is set).
                let refusal = {
                    let rt = runtime.load();
                    if rt.bans.refuses(client.ip()) {
                        Some("connection (banned)")
                    } else if rt
                        .listeners
                        .get(slot)
                        .and_then(Option::as_ref)
                        .is_none_or(|l| l.clients.is_empty() || l.clients.allows(client.ip()))
                    {
                        None
                    } else {
                        rt.bans
                            .violation(client.ip(), "refused by the listener's allow/deny list");
                        Some("connection (allow/deny list)")
                    }
                };
                if let Some(what) = refusal {
                    stats.refused.fetch_add(1, Relaxed);
                    runtime
                        .load()
                        .events
                        .record(client.ip(), "accept filter", "close", what);
                    drop(stream);
                    return;
                }
                // Per-client connection limits; the slot is held for the connection's life.
                let limits = runtime.load().conn_limits.clone();
                let _slot = match limits.map(|l| l.admit(client.ip())) {
                    Some(None) => {
                        stats.refused.fetch_add(1, Relaxed);
                        runtime
                            .load()
                            .events
                            .record(client.ip(), "connection limit", "close", "connection");
                        return;
                    }
                    Some(Some(slot)) => Some(slot),
                    None => None,
                };
                let cx = Arc::new(ConnCtx::with_client(
                    slot,
                    client,
                    via_trusted,
                    acceptor.is_some(),
                    runtime,
                ));
                let stream = Counting::new(stream, stats.clone());
                match acceptor {
                    None => server::serve(stream, false, cx, &b, w).await,
                    Some(acc) => match tokio::time::timeout(handshake_timeout, acc.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let conn = tls.get_ref().1;
                            let v13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
                            stats.tls_handshakes[usize::from(v13)].fetch_add(1, Relaxed);
                            let h2 = conn.alpn_protocol() == Some(b"h2");
                            if let Some(name) = conn.server_name() {
                                let _ = cx.sni.set(name.into());
                            }
                            server::serve(tls, h2, cx, &b, w).await
                        }
                        Ok(Err(e)) => {
                            stats.tls_failures.fetch_add(1, Relaxed);
                            tracing::debug!(%peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => {
                            stats.tls_failures.fetch_add(1, Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out")
                        }
                    },
                }
            }
        },
    )));
    handle
}
