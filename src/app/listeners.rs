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

use super::{AppError, Bound};
use crate::config::model::{self, ListenerKind};
use crate::firewall::admission::Admitted;
use crate::firewall::conn_limits::ConnSlot;
use crate::http3;
use crate::listener::{accept_loop, bind, Counting, Drain};
use crate::proxy::server::{self, Builders};
use crate::proxy::ConnCtx;
use crate::runtime::Runtime;
use crate::stats::ListenerStats;
use crate::tls::{self, LoadedCert};

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
    /// HTTP/3: the QUIC endpoint on the same port (UDP) and its limits.
    pub quic: Option<(quinn::Endpoint, http3::Limits)>,
    drain: Drain,
    task: Option<JoinHandle<()>>,
    quic_task: Option<JoinHandle<()>>,
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
            && self.quic.is_some() == matches!(&l.kind, ListenerKind::Https(s) if s.http3)
    }

    /// New certificates (or TLS settings): TCP and QUIC take them for
    /// their next handshakes.
    pub fn set_tls(&self, config: Arc<ServerConfig>) {
        if let Some((ep, limits)) = &self.quic {
            match http3::server_config(&config, *limits) {
                Ok(c) => ep.set_server_config(Some(c)),
                Err(e) => tracing::warn!(listener = %self.name, "HTTP/3 keeps its certificates: {e}"),
            }
        }
        if let Some(slot) = &self.acceptor {
            slot.store(config);
        }
    }

    fn stop_accepting(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(t) = self.quic_task.take() {
            t.abort();
        }
    }

    /// After the drain: QUIC connections still open are closed.
    fn close_quic(&self) {
        if let Some((ep, _)) = &self.quic {
            ep.close(0u32.into(), b"shutting down");
        }
    }

    /// Stops accepting and lets its connections finish, for up to `timeout`.
    pub fn close(mut self, timeout: std::time::Duration) {
        self.stop_accepting();
        tokio::spawn(async move {
            if tokio::time::timeout(timeout, self.drain.drain()).await.is_err() {
                tracing::warn!(listener = %self.name, "connections still open after the drain timeout");
            }
            self.close_quic();
        });
    }

    /// Stops accepting and waits for its connections, for up to `timeout`.
    pub async fn shutdown(mut self, timeout: std::time::Duration) -> bool {
        self.stop_accepting();
        let drained = tokio::time::timeout(timeout, self.drain.drain()).await.is_ok();
        self.close_quic();
        drained
    }
}

/// The TLS acceptor for an https listener: its certificates, or the local
/// certificate (created on first use) when it has none.
pub fn acceptor_for(
    l: &model::Listener,
    m: &model::Model,
    local: &mut Option<(std::path::PathBuf, Arc<LoadedCert>)>,
    acme: &tls::acme::AcmeRegistry,
    tokens: &Arc<crate::runtime::AcmeHttp01>,
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
    // With ACME, the local certificate serves until the CA's is issued.
    let acme = s.acme.as_ref().map(|a| {
        let answers = tokens.clone();
        let publish: tls::acme::Http01 = Arc::new(move |token, key_auth| answers.set(token, key_auth));
        acme.state_for(&l.name, a, &m.state_dir, publish)
    });
    Ok(Some(tls::server_config(
        &certs,
        if l.tcp_pool.is_some() {
            tls::Alpn::None
        } else {
            tls::Alpn::Http { h2: s.http2 }
        },
        s.client_auth.as_ref(),
        &m.state_dir,
        acme,
    )?))
}

/// Binds a listener's socket (nothing is served yet).
pub fn bind_listener(
    l: &model::Listener,
    slot: usize,
    acceptor: Option<Arc<ServerConfig>>,
    m: &model::Model,
) -> Result<Pending, AppError> {
    let socket = bind(l.addr).map_err(|source| AppError::Bind {
        what: format!("listener `{}`", l.name),
        addr: l.addr,
        source,
    })?;
    let addr = socket.local_addr().unwrap_or(l.addr);
    // HTTP/3 on the port the TCP side got.
    let quic = match (&l.kind, &acceptor) {
        (ListenerKind::Https(s), Some(tls)) if s.http3 => {
            let limits = http3::Limits {
                idle: m.timeouts.client_idle,
                max_streams: m.limits.http2_max_concurrent_streams,
                max_field_section: m.limits.max_header_bytes as u64,
                retry_above: m.limits.quic_retry_above,
                retry_always: m.limits.quic_retry_always,
            };
            let ep = http3::server_config(tls, limits)
                .and_then(|c| http3::bind(addr, c))
                .map_err(|e| AppError::Http3 {
                    listener: l.name.clone(),
                    source: e,
                })?;
            Some((ep, limits))
        }
        _ => None,
    };
    let (drain, _) = Drain::new();
    Ok(Pending {
        socket,
        handle: ListenerHandle {
            name: l.name.clone(),
            configured: l.addr,
            addr,
            slot,
            acceptor: acceptor.map(|a| Arc::new(ArcSwap::new(a))),
            quic,
            drain,
            task: None,
            quic_task: None,
        },
    })
}

/// Starts serving a bound listener. Each connection takes the runtime
/// once for its admission (PROXY header, bans, CIDR, per-client limits:
/// [`ConnFilter`](crate::firewall::admission::ConnFilter)), then the TLS
/// step ([`tls::handshake`]) on https listeners, then the proxy's server.
///
/// Plain and TLS listeners run accept loops of their own, so that each
/// connection's task is the size its kind needs (a TLS connection's state
/// would otherwise size every plain connection's task).
pub fn start(
    b: Pending,
    runtime: Arc<ArcSwap<Runtime>>,
    builders: Arc<ArcSwap<Builders>>,
    stats: Arc<ListenerStats>,
) -> ListenerHandle {
    let Pending { socket, mut handle } = b;
    let watch = handle.drain.watch();
    if let Some((ep, limits)) = &handle.quic {
        handle.quic_task = Some(tokio::spawn(http3::serve(
            ep.clone(),
            runtime.clone(),
            handle.slot,
            *limits,
            watch.clone(),
        )));
    }
    let (slot, w0) = (handle.slot, watch.clone());
    let task = match handle.acceptor.clone() {
        None => tokio::spawn(accept_loop(socket, watch, move |mut stream, peer| {
            let (w, b) = (w0.clone(), builders.load_full());
            let (stats, runtime) = (stats.clone(), runtime.clone());
            async move {
                let timeout = b.client_idle();
                let Some((cx, conn_slot)) = admit(&runtime, slot, &mut stream, peer, timeout, false).await
                else {
                    return;
                };
                let tcp = crate::tcp::is_tcp(&runtime, slot);
                if !tcp {
                    stats.protocols[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let stream = Counting::new(stream, stats);
                if tcp {
                    // Boxed: a TCP session's future is larger than an
                    // HTTP connection's, and would size every task.
                    Box::pin(crate::tcp::relay(stream, &runtime, slot, cx.peer, w)).await;
                } else {
                    server::serve(stream, false, cx, &b, w).await;
                }
                // The per-client connection slot is given back here.
                drop(conn_slot);
            }
        })),
        Some(acceptor) => tokio::spawn(accept_loop(socket, watch, move |mut stream, peer| {
            let (w, b) = (w0.clone(), builders.load_full());
            let (stats, runtime, config) = (stats.clone(), runtime.clone(), acceptor.load_full());
            async move {
                let timeout = b.client_idle();
                let Some((cx, conn_slot)) = admit(&runtime, slot, &mut stream, peer, timeout, true).await
                else {
                    return;
                };
                let stream = Counting::new(stream, stats.clone());
                match tls::handshake::accept(config, stream, timeout, &stats).await {
                    Ok(done) => {
                        if let Some(name) = done.sni {
                            let _ = cx.sni.set(name);
                        }
                        if let Some(p) = done.peer {
                            let id = crate::proxy::headers::ClientCertId::new(&p.subject, &p.sans, &p.sha256);
                            let _ = cx.client_cert.set(Box::new(id));
                        }
                        if crate::tcp::is_tcp(&runtime, slot) {
                            Box::pin(crate::tcp::relay(done.stream, &runtime, slot, cx.peer, w)).await;
                        } else {
                            server::serve(done.stream, done.h2, cx, &b, w).await
                        }
                    }
                    Err(e) => tracing::debug!(%peer, "{e}"),
                }
                drop(conn_slot);
            }
        })),
    };
    handle.task = Some(task);
    handle
}

/// Admission for a new connection on the listener at `slot`: the context
/// its requests will carry and its per-client connection slot, or None
/// when it was refused (or the listener just left the configuration).
async fn admit(
    runtime: &Arc<ArcSwap<Runtime>>,
    slot: usize,
    stream: &mut tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    timeout: std::time::Duration,
    https: bool,
) -> Option<(Arc<ConnCtx>, Option<ConnSlot>)> {
    let filter = match runtime.load().listeners.get(slot) {
        Some(Some(l)) => l.admission.clone(),
        _ => return None,
    };
    match filter.admit(stream, peer, timeout).await {
        Ok(Admitted {
            client,
            via_trusted,
            slot: conn_slot,
        }) => Some((
            // In an Arc at once: a context held by value across the TLS
            // handshake would keep its room in the task for good.
            Arc::new(ConnCtx::with_client(
                slot,
                client,
                via_trusted,
                https,
                runtime.clone(),
            )),
            conn_slot,
        )),
        Err(why) => {
            tracing::debug!(%peer, "connection closed at admission: {why}");
            None
        }
    }
}
