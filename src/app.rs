//! Turns a validated [`Model`] into running listeners and origins, and
//! drains them on shutdown.
//!
//! `start` binds every socket first (origins, then listeners) so that a
//! port conflict fails before anything serves; it builds the [`Runtime`]
//! the proxy reads and publishes it through an `ArcSwap`. `shutdown` stops
//! the accept loops, asks every connection to finish gracefully (HTTP/2
//! GOAWAY, HTTP/1.1 close after the response in flight) and waits up to the
//! drain timeout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::model::{ListenerKind, Model, OriginContent};
use crate::listener::{accept_loop, bind, Drain, DrainWatch};
use crate::origin::Site;
use crate::proxy::server::{self, Builders};
use crate::proxy::{ConnCtx, Runtime};
use crate::tls::{self, LoadedCert, TlsError};

/// Why rampart could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("origin `{name}`: {source}")]
    Origin {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listener `{0}` is https but has no certificate, and [tls] generate_local_ca is false")]
    NoCertificate(String),
}

/// Something that is listening, as users would type its URL.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub addr: SocketAddr,
    pub scheme: &'static str,
}

impl Bound {
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.addr)
    }
}

/// A started configuration.
#[derive(Debug)]
pub struct RunningApp {
    pub listeners: Vec<Bound>,
    pub origins: Vec<Bound>,
    /// The local CA certificate, when one is in use.
    pub local_ca: Option<PathBuf>,
    pub runtime: Arc<ArcSwap<Runtime>>,
    drain: Drain,
    tasks: Vec<JoinHandle<()>>,
    drain_timeout: Duration,
    /// Dropped when the accept loops have been started.
    _watch: Option<DrainWatch>,
}

impl RunningApp {
    /// Binds and starts everything the model describes.
    pub async fn start(model: &Model) -> Result<Self, AppError> {
        let (drain, watch) = Drain::new();
        let mut tasks = Vec::new();

        // Origins first, so that a pool pointing at them finds them up.
        let mut origins = Vec::new();
        let mut origin_sockets = Vec::new();
        for o in &model.origins {
            let sock = bind(o.addr).map_err(|source| AppError::Bind {
                what: format!("origin `{}`", o.name),
                addr: o.addr,
                source,
            })?;
            let site = match &o.content {
                OriginContent::Demo => Site::demo(&o.name),
                OriginContent::Dir(d) => Site::dir(d.clone()).map_err(|source| AppError::Origin {
                    name: o.name.clone(),
                    source,
                })?,
            };
            let addr = sock.local_addr().unwrap_or(o.addr);
            origins.push(Bound {
                name: o.name.clone(),
                addr,
                scheme: "http",
            });
            origin_sockets.push((sock, Arc::new(site)));
        }

        // Listeners: bind all, then build the runtime with the real ports.
        let mut local_ca = None;
        let mut local_cert: Option<Arc<LoadedCert>> = None;
        let mut sockets = Vec::new();
        let mut bound = Vec::new();
        let mut listeners = Vec::new();
        for l in &model.listeners {
            let sock = bind(l.addr).map_err(|source| AppError::Bind {
                what: format!("listener `{}`", l.name),
                addr: l.addr,
                source,
            })?;
            let addr = sock.local_addr().unwrap_or(l.addr);
            let acceptor = match &l.kind {
                ListenerKind::Http { .. } => None,
                ListenerKind::Https(s) => {
                    let certs = if s.certs.is_empty() {
                        if !model.generate_local_ca {
                            return Err(AppError::NoCertificate(l.name.clone()));
                        }
                        if local_cert.is_none() {
                            let lc = tls::ca::ensure_local_cert(&model.state_dir)?;
                            if lc.created {
                                tracing::info!(ca = %lc.ca_path.display(), "created a local CA and a localhost certificate");
                            }
                            local_ca = Some(lc.ca_path);
                            local_cert = Some(Arc::new(lc.cert));
                        }
                        local_cert.iter().cloned().collect()
                    } else {
                        s.certs.clone()
                    };
                    for c in &certs {
                        for p in c.problems() {
                            tracing::warn!(listener = %l.name, "{p}");
                        }
                    }
                    Some(TlsAcceptor::from(tls::server_config(&certs, s.http2)?))
                }
            };
            bound.push(addr);
            listeners.push(Bound {
                name: l.name.clone(),
                addr,
                scheme: if acceptor.is_some() { "https" } else { "http" },
            });
            sockets.push((sock, acceptor));
        }
        let runtime = Arc::new(ArcSwap::from_pointee(Runtime::build(
            model,
            &bound,
            &origins
                .iter()
                .map(|o| (o.name.clone(), o.addr))
                .collect::<Vec<_>>(),
        )));
        let builders = Arc::new(Builders::new(&model.timeouts));

        for (sock, site) in origin_sockets {
            let (w0, b) = (watch.clone(), builders.clone());
            tasks.push(tokio::spawn(accept_loop(
                sock,
                watch.clone(),
                move |stream, _peer| {
                    let (site, w, b) = (site.clone(), w0.clone(), b.clone());
                    async move { server::serve_site(stream, site, &b, w).await }
                },
            )));
        }
        let handshake_timeout = model.timeouts.client_idle;
        for (i, (sock, acceptor)) in sockets.into_iter().enumerate() {
            let (w0, b, rt) = (watch.clone(), builders.clone(), runtime.clone());
            tasks.push(tokio::spawn(accept_loop(
                sock,
                watch.clone(),
                move |stream, peer| {
                    let cx = Arc::new(ConnCtx::new(i, peer, acceptor.is_some(), rt.clone()));
                    let (w, b, acceptor) = (w0.clone(), b.clone(), acceptor.clone());
                    async move {
                        match acceptor {
                            None => server::serve(stream, false, cx, &b, w).await,
                            Some(acc) => {
                                match tokio::time::timeout(handshake_timeout, acc.accept(stream)).await {
                                    Ok(Ok(tls)) => {
                                        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                                        server::serve(tls, h2, cx, &b, w).await
                                    }
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, error = %e, "TLS handshake failed")
                                    }
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            }
                        }
                    }
                },
            )));
        }
        drop(watch);
        Ok(RunningApp {
            listeners,
            origins,
            local_ca,
            runtime,
            drain,
            tasks,
            drain_timeout: model.timeouts.drain,
            _watch: None,
        })
    }

    /// Stops accepting, lets requests in flight finish (up to the drain
    /// timeout) and returns whether everything finished in time.
    pub async fn shutdown(self) -> bool {
        match tokio::time::timeout(self.drain_timeout, self.drain.drain()).await {
            Ok(()) => {
                for t in self.tasks {
                    let _ = t.await;
                }
                true
            }
            Err(_) => {
                tracing::warn!(after = ?self.drain_timeout, "drain timeout: closing the connections still open");
                false
            }
        }
    }
}
