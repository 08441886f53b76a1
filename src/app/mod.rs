//! Turns a validated [`Model`] into running listeners, origins, health
//! checks and the admin API; reloads it; applies runtime changes; drains it
//! on shutdown.
//!
//! Start binds every socket first (origins, admin, then listeners) so that
//! a port conflict fails before anything serves. The proxy reads a
//! [`Runtime`] through an `ArcSwap`: a reload or a runtime change builds a
//! new one (keeping servers' live state) and swaps it in, so requests in
//! flight finish on the one they started with. Listeners whose address and
//! protocol did not change keep their sockets and their keep-alive
//! connections across reloads (their certificates are swapped in place).
//!
//! Exposes [`App`] (shared with the admin API and signal handlers),
//! [`RunningApp`] (its owner), [`Bound`] and [`AppError`].

mod changes;
mod control;
pub mod fleet;
mod fleet_acme;
mod listeners;
mod reload;
mod view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use changes::{AddedServer, Changes};
pub use fleet_acme::share_ca;
pub use reload::{ChangeError, ReloadReport};

use crate::balancer::AdminState;
use crate::config::model::{Model, OriginContent};
use crate::health::Supervisor;
use crate::listener::{accept_loop, bind, Drain};
use crate::origin::Site;
use crate::proxy::server::Builders;
use crate::runtime::{Bindings, Runtime};
use crate::tls::{LoadedCert, TlsError};
use listeners::ListenerHandle;

/// Why rampart could not start (or apply a change).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("listener `{listener}`: HTTP/3: {source}")]
    Http3 {
        listener: String,
        #[source]
        source: crate::http3::Http3Error,
    },
    #[error("cannot listen on {addr} for {what}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("origin `{name}`: TLS: {source}")]
    OriginTls {
        name: String,
        #[source]
        source: TlsError,
    },
    #[error("pool `{pool}`: TLS to its servers: {source}")]
    PoolTls {
        pool: String,
        #[source]
        source: TlsError,
    },
    #[error("origin `{name}`: {source}")]
    Origin {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("listener `{0}` is https but has no certificate, and [tls] generate_local_ca is false")]
    NoCertificate(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("there is no config file to reload (rampart up runs a built-in config)")]
    NoSource,
    #[error("the config could not be read: {0}")]
    Loader(String),
    #[error("cannot save runtime changes to {path}: {source}")]
    SaveState {
        path: String,
        #[source]
        source: std::io::Error,
    },
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

/// The mutable part, changed only under the lock.
#[derive(Debug)]
struct State {
    /// The config as loaded from its file (runtime changes not applied).
    model: Model,
    changes: Changes,
    /// (pool, server) of removals waiting for requests in flight.
    removing: std::collections::BTreeSet<(String, String)>,
    listeners: Vec<ListenerHandle>,
    bindings: Bindings,
    next_slot: usize,
    health: Supervisor,
    /// The local CA's path and certificate, once created or loaded.
    local: Option<(PathBuf, Arc<LoadedCert>)>,
    /// The alert evaluator, when rules are configured.
    alerts: Option<JoinHandle<()>>,
    /// Listeners whose certificates come from an ACME CA.
    acme: crate::tls::acme::AcmeRegistry,
}

/// A running configuration, shared by the signal handlers and the admin API.
#[derive(Debug)]
pub struct App {
    pub runtime: Arc<ArcSwap<Runtime>>,
    /// The one metrics registry.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Rates and percentiles, once a second.
    pub sampler: Arc<crate::metrics::sampler::Sampler>,
    /// Ready for traffic: bound, first verdicts in, not shutting down.
    pub readiness: Arc<crate::runtime::Readiness>,
    builders: Arc<ArcSwap<Builders>>,
    state: Mutex<State>,
    /// One reload at a time; held while the new config is read, which
    /// happens off the worker threads and without `state`.
    reload_gate: Mutex<()>,
    pub origins: Vec<Bound>,
    pub admin: Option<Bound>,
    state_path: PathBuf,
    /// `[runtime] state_dir`, as started.
    state_dir: PathBuf,
    /// The fleet revision applied last (with `[fleet]`).
    fleet_applied: std::sync::Mutex<Option<crate::fleet::Revision>>,
    /// The fleet's etcd while connected (with `[fleet]`).
    fleet_store: Mutex<Option<crate::fleet::Store>>,
    /// The etcd revision of each server's runtime record last seen.
    fleet_seen: std::sync::Mutex<std::collections::HashMap<(String, String), i64>>,
    drain_timeout: Duration,
    /// Origins and the admin API drain with the process.
    service_drain: Drain,
    service_tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// The owner of a started [`App`].
#[derive(Debug)]
pub struct RunningApp {
    pub app: Arc<App>,
    pub listeners: Vec<Bound>,
    pub origins: Vec<Bound>,
    /// The local CA certificate, when one is in use.
    pub local_ca: Option<PathBuf>,
    pub runtime: Arc<ArcSwap<Runtime>>,
}

impl RunningApp {
    /// Binds and starts everything the model describes.
    pub async fn start(model: &Model) -> Result<Self, AppError> {
        view::mark_start();
        // A fleet instance starts from the fleet's revision (or the last
        // one it applied, without etcd).
        let (model, revision) = fleet::initial(model.clone()).await;
        let settings = model.fleet.clone();
        let app = App::start(model).await?;
        if let Some(settings) = settings {
            let stats = app.runtime.load().fleet_stats.clone().unwrap_or_default();
            if let Some(r) = revision {
                stats
                    .revision
                    .store(r.revision, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = crate::fleet::cache::save(&app.state_dir, &r) {
                    tracing::warn!(
                        "fleet: cannot keep revision {} in {}: {e}",
                        r.revision,
                        app.state_dir.display()
                    );
                }
                *app.fleet_applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            let task = tokio::spawn(fleet::run(app.clone(), settings, stats));
            if let Ok(mut t) = app.service_tasks.lock() {
                t.push(task);
            }
        }
        let listeners = app.listeners().await;
        let local_ca = app.local_ca().await;
        Ok(RunningApp {
            listeners,
            origins: app.origins.clone(),
            local_ca,
            runtime: app.runtime.clone(),
            app,
        })
    }

    /// The admin API's address, when enabled.
    pub fn admin(&self) -> Option<SocketAddr> {
        self.app.admin.as_ref().map(|b| b.addr)
    }

    /// Stops accepting, lets requests in flight finish (up to the drain
    /// timeout) and returns whether everything finished in time.
    pub async fn shutdown(self) -> bool {
        self.app.shutdown().await
    }
}

impl App {
    /// The config as loaded from its file (what a reload last swapped in).
    pub async fn model(&self) -> Model {
        self.state.lock().await.model.clone()
    }

    async fn start(model: Model) -> Result<Arc<App>, AppError> {
        // Keys rampart keeps (its CA's, the certificates it issued) must be
        // private before anything uses them.
        crate::tls::ca::check_key_modes(&model.state_dir)?;
        let state_path = changes::state_file(&model.state_dir);
        let (changes, problem) = Changes::load(&state_path);
        if let Some(p) = problem {
            tracing::error!("{p}");
        }
        let mut effective = model.clone();
        for w in changes.apply(&mut effective) {
            tracing::warn!("{w}");
        }
        let (service_drain, _) = Drain::new();
        let builders = Arc::new(ArcSwap::from_pointee(Builders::new(
            &model.timeouts,
            &model.limits,
        )));
        let mut service_tasks = Vec::new();

        // Origins first, so that a pool pointing at them finds them up.
        let mut origins = Vec::new();
        let mut own = crate::tls::renew::OwnCerts {
            client: true,
            origins: Vec::new(),
        };
        let mut bindings = Bindings {
            upstream_tls: upstream_tls(&effective)?,
            ..Bindings::default()
        };
        if let Some(settings) = &effective.cluster {
            let (cluster, task) =
                crate::cluster::start(settings, bindings.bans.clone()).map_err(AppError::Loader)?;
            tracing::info!(redis = %cluster.shown(), "sharing cluster-scope limits and bans through Redis");
            bindings.cluster = Some(cluster);
            service_tasks.push(task);
        }
        if !effective.peers.is_empty() {
            let (fleet, task) = crate::cluster::fleet::start(&effective.peers);
            bindings.fleet = Some(fleet);
            service_tasks.push(task);
        }
        for o in &effective.origins {
            let what = format!("origin `{}`", o.name);
            let sock = bind(o.addr).map_err(|source| AppError::Bind {
                what,
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
            // Over TLS: its certificate is for the address it is bound to.
            if let Some(crate::config::model::OriginTls {
                cert: crate::config::model::CertSource::Internal,
                ..
            }) = &o.tls
            {
                let names = crate::tls::origin::internal_names(&o.name, addr);
                own.origins.push((o.name.clone(), names));
            }
            let tls = match &o.tls {
                None => None,
                Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                    crate::tls::origin::origin_config(t, &o.name, addr, &effective.state_dir).map_err(
                        |e| AppError::OriginTls {
                            name: o.name.clone(),
                            source: e,
                        },
                    )?,
                )),
            };
            origins.push(Bound {
                name: o.name.clone(),
                addr,
                scheme: if tls.is_some() { "https" } else { "http" },
            });
            bindings.origins.insert(o.name.clone(), addr);
            let (site, w0, b) = (Arc::new(site), service_drain.watch(), builders.clone());
            service_tasks.push(tokio::spawn(accept_loop(
                sock,
                service_drain.watch(),
                move |stream, peer| {
                    let (site, w, b, tls) = (site.clone(), w0.clone(), b.load_full(), tls.clone());
                    async move {
                        let Some(acceptor) = tls else {
                            return crate::origin::serve_connection(stream, site, b.h1(), w).await;
                        };
                        // A client without an acceptable certificate (or
                        // speaking plaintext) gets no page.
                        match tokio::time::timeout(b.client_idle(), acceptor.accept(stream)).await {
                            Ok(Ok(s)) => crate::origin::serve_connection(s, site, b.h1(), w).await,
                            Ok(Err(e)) => tracing::debug!(%peer, "origin TLS handshake failed: {e}"),
                            Err(_) => tracing::debug!(%peer, "origin TLS handshake timed out"),
                        }
                    }
                },
            )));
        }

        // The certificates rampart issues itself are renewed while it runs.
        service_tasks.push(tokio::spawn(crate::tls::renew::renew_forever(
            own,
            effective.state_dir.clone(),
        )));

        let admin_socket = match effective.admin.addr {
            None => None,
            Some(a) => Some(bind(a).map_err(|source| AppError::Bind {
                what: "the admin API".into(),
                addr: a,
                source,
            })?),
        };
        let admin = admin_socket.as_ref().map(|s| Bound {
            name: "admin".into(),
            addr: s.local_addr().unwrap_or(s_addr(&effective)),
            scheme: "http",
        });

        let acme = match effective.fleet.as_ref().and_then(fleet_acme::FleetAcme::new) {
            Some(shared) => crate::tls::acme::AcmeRegistry::shared(Arc::new(shared)),
            None => crate::tls::acme::AcmeRegistry::default(),
        };
        // Listeners: bind all, then build the runtime with the real ports.
        let mut local = None;
        let mut pending = Vec::new();
        for (slot, l) in effective.listeners.iter().enumerate() {
            let acceptor = listeners::acceptor_for(l, &effective, &mut local, &acme, &bindings.acme_http01)?;
            if let Some(at) = acme.expiry(&l.name) {
                bindings.acme_expiry.insert(l.name.clone(), at);
            }
            let p = listeners::bind_listener(l, slot, acceptor, &effective)?;
            bindings.listeners.insert(l.name.clone(), (slot, p.handle.addr));
            pending.push(p);
        }
        bindings.local_cert = local_cert_info(&local);
        bindings.access_log = effective
            .access_log
            .as_ref()
            .map(crate::accesslog::AccessLog::start);
        bindings.bans.configure(effective.bans);
        bindings.conn_limits = conn_limits(&effective);
        let rt = Runtime::build(&effective, &bindings, None);
        apply_drained(&rt, &changes);
        let runtime = Arc::new(ArcSwap::from_pointee(rt));
        let mut health = Supervisor::default();
        health.reconcile(&runtime.load());
        let listeners = pending
            .into_iter()
            .map(|p| {
                let stats = bindings.stats.listener(&p.handle.name);
                listeners::start(p, runtime.clone(), builders.clone(), stats)
            })
            .collect();

        let sampler = Arc::<crate::metrics::sampler::Sampler>::default();
        service_tasks.push(tokio::spawn(sampler.clone().run(runtime.clone())));
        let app = Arc::new(App {
            metrics: Arc::new(crate::metrics::Metrics::new(runtime.clone())),
            sampler,
            runtime,
            builders,
            reload_gate: Mutex::new(()),
            state: Mutex::new(State {
                next_slot: effective.listeners.len(),
                model,
                changes,
                removing: Default::default(),
                listeners,
                bindings,
                health,
                local,
                alerts: None,
                acme,
            }),
            origins,
            admin,
            state_path,
            state_dir: effective.state_dir.clone(),
            fleet_applied: std::sync::Mutex::new(None),
            fleet_store: Mutex::new(None),
            fleet_seen: Default::default(),
            drain_timeout: effective.timeouts.drain,
            readiness: Default::default(),
            service_drain,
            service_tasks: std::sync::Mutex::new(service_tasks),
        });
        {
            let mut st = app.state.lock().await;
            st.alerts = crate::alerts::start(
                &effective.alerts,
                app.sampler.clone(),
                app.runtime.clone(),
                webhook_tls(&effective.alerts, &effective.state_dir),
            );
        }
        if let Some(sock) = admin_socket {
            let admin = crate::admin::Admin {
                control: app.clone(),
                runtime: app.runtime.clone(),
                sampler: app.sampler.clone(),
                metrics: app.metrics.clone(),
                token: effective.admin.token.clone(),
                readiness: app.readiness.clone(),
            };
            let task = crate::admin::serve(sock, Arc::new(admin), app.service_drain.watch());
            if let Ok(mut t) = app.service_tasks.lock() {
                t.push(task);
            }
        }
        Ok(app)
    }

    /// The listeners serving now.
    pub async fn listeners(&self) -> Vec<Bound> {
        self.state
            .lock()
            .await
            .listeners
            .iter()
            .map(ListenerHandle::bound)
            .collect()
    }

    /// Reopens the access log file (after rotation; on SIGUSR1).
    pub fn reopen_access_log(&self) {
        if let Some(l) = &self.runtime.load().access_log {
            l.reopen();
        }
    }

    /// The local CA certificate's path, when one is in use.
    pub async fn local_ca(&self) -> Option<PathBuf> {
        self.state.lock().await.local.as_ref().map(|(p, _)| p.clone())
    }

    /// A copy of the runtime changes in force.
    pub async fn changes(&self) -> Changes {
        self.state.lock().await.changes.clone()
    }

    /// Stops accepting, lets requests in flight finish (up to the drain
    /// timeout) and returns whether everything finished in time.
    pub async fn shutdown(&self) -> bool {
        // Not ready any more; keep serving for `shutdown_delay` so that
        // whatever sends traffic here (keepalived, a load balancer) moves
        // it away before the listeners close.
        self.readiness.start_draining();
        let delay = self.runtime.load().timeouts.shutdown_delay;
        if !delay.is_zero() {
            tracing::info!(
                ?delay,
                "not ready any more: still accepting for the shutdown delay"
            );
            tokio::time::sleep(delay).await;
        }
        let (handles, _) = {
            let mut st = self.state.lock().await;
            st.health.stop();
            // No order or renewal of certificates from a stopping instance
            // (in a fleet another one takes over).
            st.acme.stop();
            if let Some(a) = st.alerts.take() {
                a.abort();
            }
            (std::mem::take(&mut st.listeners), ())
        };
        if let Ok(mut t) = self.service_tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
        let waits = handles.into_iter().map(|h| h.shutdown(self.drain_timeout));
        let services = tokio::time::timeout(self.drain_timeout, self.service_drain.drain());
        let (done, services) = tokio::join!(futures_util::future::join_all(waits), services);
        let ok = done.into_iter().all(|d| d) && services.is_ok();
        if !ok {
            tracing::warn!(after = ?self.drain_timeout, "drain timeout: closing the connections still open");
        }
        ok
    }
}

/// The TLS client configuration for an `https://` alert webhook (the
/// certificate checked against `webhook_ca`); None for `http://` or when
/// it cannot be built (logged: notifications then fail and say so).
pub(crate) fn webhook_tls(
    a: &crate::config::model::Alerts,
    state_dir: &std::path::Path,
) -> Option<Arc<rustls::ClientConfig>> {
    let uri = a.webhook.as_ref().filter(|u| u.scheme_str() == Some("https"))?;
    let t = crate::config::model::BackendTls {
        roots: a.webhook_roots.clone(),
        client: None,
        pins: Vec::new(),
        revocation: None,
    };
    match crate::tls::client::upstream_config(&t, crate::config::model::UpstreamProtocol::Http1, state_dir) {
        Ok(cfg) => Some(cfg),
        Err(e) => {
            tracing::error!(webhook = %uri, "alert webhook: no TLS client configuration: {e}");
            None
        }
    }
}

fn s_addr(m: &Model) -> SocketAddr {
    m.admin
        .addr
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The TLS client configuration of each pool with `[pool.tls]` (the
/// internal CA and rampart's client certificate are made in the state
/// directory when a pool asks for them), each with a generation number of
/// its own.
fn upstream_tls(m: &Model) -> Result<HashMap<String, (Arc<rustls::ClientConfig>, usize)>, AppError> {
    static GENERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let mut out = HashMap::new();
    for p in &m.pools {
        if let Some(t) = &p.tls {
            let cfg = crate::tls::client::upstream_config(t, p.protocol, &m.state_dir).map_err(|e| {
                AppError::PoolTls {
                    pool: p.name.clone(),
                    source: e,
                }
            })?;
            let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.insert(p.name.clone(), (cfg, generation));
        }
    }
    Ok(out)
}

/// The local certificate's name and expiry, for metrics.
fn local_cert_info(local: &Option<(PathBuf, Arc<LoadedCert>)>) -> Option<crate::runtime::CertInfo> {
    local.as_ref().map(|(_, c)| crate::runtime::CertInfo {
        name: "localhost".to_string(),
        sans: c.spec.cert_names.clone(),
        issuer: c.spec.issuer.clone(),
        not_after: c.spec.not_after,
    })
}

/// The per-client connection limits a model asks for.
fn conn_limits(m: &Model) -> Option<Arc<crate::firewall::conn_limits::ConnLimits>> {
    let rate = std::num::NonZeroU32::new(m.new_connections_per_client_per_second);
    (m.max_connections_per_client > 0 || rate.is_some()).then(|| {
        Arc::new(crate::firewall::conn_limits::ConnLimits::new(
            m.max_connections_per_client,
            rate,
        ))
    })
}

/// Marks the servers the runtime changes drained.
fn apply_drained(rt: &Runtime, changes: &Changes) {
    for p in &rt.pools {
        for s in p.balancer.servers() {
            if changes.is_drained(&p.name, &s.name) {
                s.state.set_admin(AdminState::Draining);
            }
        }
    }
}
