//! Changing a running configuration: reloading the config file, and the
//! runtime changes the admin API makes (add a server, set a weight, drain,
//! remove). Every change builds a new [`Runtime`] from the file's model plus
//! the runtime changes, and swaps it in.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::listeners::{self, ListenerHandle};
use super::{apply_drained, AddedServer, App, AppError, State};
use crate::balancer::AdminState;
use crate::config::{self, Model};
use crate::proxy::server::Builders;
use crate::runtime::Runtime;

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadReport {
    pub listeners_added: Vec<String>,
    pub listeners_removed: Vec<String>,
    pub listeners_kept: Vec<String>,
    pub pools: Vec<String>,
    /// Settings that changed but only take effect after a restart, and
    /// runtime changes that no longer apply.
    pub warnings: Vec<String>,
}

/// Why a runtime change was refused; the admin API answers with it.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("no pool is named `{0}`")]
    NoPool(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Fleet(String),
    #[error("pool `{pool}` has no server named `{server}`")]
    NoServer { pool: String, server: String },
    #[error("pool `{pool}` already has a server named `{server}`")]
    Duplicate { pool: String, server: String },
    #[error("server `{server}` of pool `{pool}` is being removed")]
    Removing { pool: String, server: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    App(#[from] AppError),
}

impl App {
    /// Loads the config file again. An invalid config changes nothing and
    /// the error says where it is wrong. A refusal is logged here, whoever
    /// asked (SIGHUP, `rampart reload`, `POST /api/reload`).
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadReport, AppError> {
        let r = self.reload_file().await;
        let journal = self.runtime.load().journal.clone();
        match &r {
            Ok(report) => {
                let detail = format!(
                    "{} listener(s) added, {} removed, {} kept; {} warning(s)",
                    report.listeners_added.len(),
                    report.listeners_removed.len(),
                    report.listeners_kept.len(),
                    report.warnings.len()
                );
                journal.changed("reload", "config", detail);
            }
            Err(e) => {
                tracing::error!("reload refused, the running config stays: {e}");
                journal.changed("reload_refused", "config", e.to_string());
            }
        }
        r
    }

    async fn reload_file(self: &Arc<Self>) -> Result<ReloadReport, AppError> {
        let _one_at_a_time = self.reload_gate.lock().await;
        let (source, mut model) = self.load_source().await?;
        // With [fleet], the file gives [fleet]; the configuration served is
        // the fleet revision applied last (the file's own until one is).
        if model.fleet.is_some() {
            if let Some(rev) = self.fleet_applied() {
                model = super::fleet::compose(&model, &rev)?;
            }
        }
        self.apply_locked(model, &source.display().to_string()).await
    }

    /// The config file read again, off the worker threads.
    async fn load_source(&self) -> Result<(std::path::PathBuf, config::model::Model), AppError> {
        let source = self.state.lock().await.model.source.clone();
        let source = source.ok_or(AppError::NoSource)?;
        // Reading files, parsing certificates and resolving names may take
        // seconds: on the blocking pool, with no lock held, so that
        // requests and admin calls go on meanwhile.
        let path = source.clone();
        let model = tokio::task::spawn_blocking(move || config::load_file(&path, &crate::tls::SystemEnv))
            .await
            .map_err(|e| AppError::Loader(e.to_string()))??;
        Ok((source, model))
    }

    /// Applies a fleet revision as a reload: the config file's `[fleet]`
    /// with the revision's configuration. On success it is the revision
    /// later reloads start from.
    pub async fn apply_revision(
        self: &Arc<Self>,
        rev: &crate::fleet::Revision,
    ) -> Result<ReloadReport, AppError> {
        let _one_at_a_time = self.reload_gate.lock().await;
        let (_, local) = self.load_source().await?;
        let (rev2, local2) = (rev.clone(), local.clone());
        let model = tokio::task::spawn_blocking(move || super::fleet::compose(&local2, &rev2))
            .await
            .map_err(|e| AppError::Loader(e.to_string()))??;
        let journal = self.runtime.load().journal.clone();
        let what = format!("fleet revision {}", rev.revision);
        match self.apply_locked(model, &what).await {
            Ok(report) => {
                *self.fleet_applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(rev.clone());
                journal.changed("reload", what, "applied");
                Ok(report)
            }
            Err(e) => {
                journal.changed("reload_refused", what, e.to_string());
                Err(e)
            }
        }
    }

    /// The fleet revision applied last, if any.
    pub fn fleet_applied(&self) -> Option<crate::fleet::Revision> {
        self.fleet_applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `model` in force (the caller holds the reload gate); `origin`
    /// names where it came from, for the log.
    async fn apply_locked(
        self: &Arc<Self>,
        model: config::model::Model,
        origin: &str,
    ) -> Result<ReloadReport, AppError> {
        let mut st = self.state.lock().await;
        let mut report = ReloadReport {
            warnings: restart_only(&st.model, &model),
            ..Default::default()
        };
        let mut effective = model.clone();
        report.warnings.extend(st.changes.apply(&mut effective));
        // TLS towards the pools: a CA file that cannot be used fails the
        // reload here, before anything running is touched.
        let upstream_tls = super::upstream_tls(&effective)?;

        // Bind what is new before touching anything, so a failure leaves
        // the running config as it was.
        let mut old: Vec<ListenerHandle> = std::mem::take(&mut st.listeners);
        let mut kept = Vec::new();
        let mut pending = Vec::new();
        let access_log = if effective.access_log == st.model.access_log {
            st.bindings.access_log.clone()
        } else {
            effective
                .access_log
                .as_ref()
                .map(crate::accesslog::AccessLog::start)
        };
        let mut bindings = crate::runtime::Bindings {
            origins: st.bindings.origins.clone(),
            stats: st.bindings.stats.clone(),
            bans: st.bindings.bans.clone(),
            events: st.bindings.events.clone(),
            limiters: st.bindings.limiters.clone(),
            acme_http01: st.bindings.acme_http01.clone(),
            cluster: st.bindings.cluster.clone(),
            fleet: st.bindings.fleet.clone(),
            access_log,
            upstream_tls,
            ..Default::default()
        };
        let mut local = st.local.clone();
        let result: Result<(), AppError> = (|| {
            for l in &effective.listeners {
                let acceptor =
                    listeners::acceptor_for(l, &effective, &mut local, &st.acme, &bindings.acme_http01)?;
                if let Some(at) = st.acme.expiry(&l.name) {
                    bindings.acme_expiry.insert(l.name.clone(), at);
                }
                if let Some(i) = old.iter().position(|h| h.serves(l)) {
                    let mut h = old.remove(i);
                    if let Some(a) = acceptor {
                        h.set_tls(a);
                    }
                    h.name = l.name.clone();
                    h.configured = l.addr;
                    bindings.listeners.insert(l.name.clone(), (h.slot, h.addr));
                    kept.push(h);
                } else {
                    let slot = st.next_slot + pending.len();
                    let p = listeners::bind_listener(l, slot, acceptor, &effective)?;
                    bindings.listeners.insert(l.name.clone(), (slot, p.handle.addr));
                    pending.push(p);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Put everything back as it was; new sockets close on drop.
            old.extend(kept);
            st.listeners = old;
            return Err(e);
        }
        bindings.bans.configure(effective.bans);
        let same_limits = effective.max_connections_per_client == st.model.max_connections_per_client
            && effective.new_connections_per_client_per_second
                == st.model.new_connections_per_client_per_second;
        bindings.conn_limits = if same_limits {
            st.bindings.conn_limits.clone()
        } else {
            super::conn_limits(&effective)
        };
        st.next_slot += pending.len();
        bindings.local_cert = super::local_cert_info(&local);
        st.local = local;

        let prev = self.runtime.load_full();
        let rt = Runtime::build(&effective, &bindings, Some(&prev));
        apply_drained(&rt, &st.changes);
        report.pools = rt.pools.iter().map(|p| p.name.clone()).collect();
        self.builders
            .store(Arc::new(Builders::new(&effective.timeouts, &effective.limits)));
        self.runtime.store(Arc::new(rt));
        crate::runtime::retire_gone(&prev, &self.runtime.load());
        st.health.reconcile(&self.runtime.load());

        report.listeners_kept = kept.iter().map(|h| h.name.clone()).collect();
        for p in pending {
            report.listeners_added.push(p.handle.name.clone());
            let stats = bindings.stats.listener(&p.handle.name);
            kept.push(listeners::start(
                p,
                self.runtime.clone(),
                self.builders.clone(),
                stats,
            ));
        }
        for h in old {
            report.listeners_removed.push(h.name.clone());
            h.close(effective.timeouts.drain);
        }
        if effective.alerts != st.model.alerts {
            if let Some(a) = st.alerts.take() {
                a.abort();
            }
            st.alerts = crate::alerts::start(
                &effective.alerts,
                self.sampler.clone(),
                self.runtime.clone(),
                super::webhook_tls(&effective.alerts, &effective.state_dir),
            );
        }
        st.listeners = kept;
        st.bindings = bindings;
        st.model = model;
        for w in &report.warnings {
            tracing::warn!("reload: {w}");
        }
        tracing::info!(
            added = ?report.listeners_added,
            removed = ?report.listeners_removed,
            "configuration reloaded from {origin}"
        );
        Ok(report)
    }

    /// Adds a server to a pool at runtime.
    pub async fn add_server(self: &Arc<Self>, a: AddedServer) -> Result<(), ChangeError> {
        if a.name.is_empty() || a.name.len() > 128 || a.name.contains(['/', ' ']) {
            return Err(ChangeError::Invalid(
                "a server name is 1 to 128 characters, without `/` or spaces".into(),
            ));
        }
        if a.weight == 0 || a.weight > 10_000 {
            return Err(ChangeError::Invalid("weight must be from 1 to 10000".into()));
        }
        let mut st = self.state.lock().await;
        if st.removing.contains(&(a.pool.clone(), a.name.clone())) {
            return Err(ChangeError::Removing {
                pool: a.pool,
                server: a.name,
            });
        }
        let rt = self.runtime.load_full();
        let pool = rt
            .pool(&a.pool)
            .ok_or_else(|| ChangeError::NoPool(a.pool.clone()))?;
        if pool.balancer.servers().iter().any(|s| s.name == a.name) {
            return Err(ChangeError::Duplicate {
                pool: a.pool,
                server: a.name,
            });
        }
        let file_server = in_file(&st, &a.pool, &a.name);
        let (pool, name) = (a.pool.clone(), a.name.clone());
        self.change(&mut st, &pool, &name, |c| {
            c.forget(&a.pool, &a.name);
            if file_server {
                // The file's server stays dropped; this one takes its place.
                c.mark_removed(&a.pool, &a.name);
            } else if let Some(r) = c.removed.get_mut(&a.pool) {
                r.remove(&a.name);
                c.removed.retain(|_, r| !r.is_empty());
            }
            c.added.push(a.clone());
        })
        .await?;
        tracing::info!(pool = %pool, server = %name, "server added");
        self.rebuild(&mut st)
    }

    /// Sets a server's weight at runtime.
    pub async fn set_weight(
        self: &Arc<Self>,
        pool: &str,
        server: &str,
        weight: u32,
    ) -> Result<(), ChangeError> {
        if weight == 0 || weight > 10_000 {
            return Err(ChangeError::Invalid("weight must be from 1 to 10000".into()));
        }
        let mut st = self.state.lock().await;
        self.find_settled(&st, pool, server)?;
        self.change(&mut st, pool, server, |c| {
            c.weights
                .entry(pool.to_string())
                .or_default()
                .insert(server.to_string(), weight);
        })
        .await?;
        tracing::info!(pool, server, weight, "weight set");
        self.rebuild(&mut st)
    }

    /// Stops sending new requests to a server; requests in flight finish.
    pub async fn drain(self: &Arc<Self>, pool: &str, server: &str) -> Result<(), ChangeError> {
        let mut st = self.state.lock().await;
        let b = self.find_settled(&st, pool, server)?;
        self.change(&mut st, pool, server, |c| {
            c.drained
                .entry(pool.to_string())
                .or_default()
                .insert(server.to_string());
        })
        .await?;
        b.state.set_admin(AdminState::Draining);
        tracing::info!(pool, server, in_flight = b.in_flight(), "server draining");
        self.save(&st)
    }

    /// Sends new requests to a drained server again. Returns whether it was
    /// drained (undraining an active server changes nothing).
    pub async fn undrain(self: &Arc<Self>, pool: &str, server: &str) -> Result<bool, ChangeError> {
        let mut st = self.state.lock().await;
        let b = self.find_settled(&st, pool, server)?;
        let was = b.state.admin() == AdminState::Draining;
        let recorded = st.changes.is_drained(pool, server);
        if recorded {
            self.change(&mut st, pool, server, |c| {
                c.undrain(pool, server);
            })
            .await?;
        }
        b.state.set_admin(AdminState::Active);
        tracing::info!(pool, server, "server undrained");
        if recorded {
            self.save(&st)?;
        }
        Ok(was || recorded)
    }

    /// Drains a server, then removes it once its requests in flight are
    /// done (or the drain timeout passed). The removal is saved at once, so
    /// that a restart during the drain does not bring the server back; a
    /// second removal while the first drains changes nothing.
    pub async fn remove(self: &Arc<Self>, pool: &str, server: &str) -> Result<(), ChangeError> {
        let mut st = self.state.lock().await;
        let key = (pool.to_string(), server.to_string());
        if st.removing.contains(&key) {
            return Ok(());
        }
        let b = self.find(pool, server)?;
        let file_server = in_file(&st, pool, server);
        self.change(&mut st, pool, server, |c| {
            c.forget(pool, server);
            if file_server {
                c.mark_removed(pool, server);
            }
        })
        .await?;
        b.state.set_admin(AdminState::Draining);
        b.state.set_removing();
        self.save(&st)?;
        st.removing.insert(key.clone());
        tracing::info!(
            pool,
            server,
            in_flight = b.in_flight(),
            "server draining before removal"
        );
        drop(st);
        let app = self.clone();
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        tokio::spawn(async move {
            while b.in_flight() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut st = app.state.lock().await;
            st.removing.remove(&key);
            let (pool, server) = key;
            match app.rebuild(&mut st) {
                Ok(()) => tracing::info!(pool = %pool, server = %server, "server removed"),
                Err(e) => tracing::error!(pool = %pool, server = %server, "removing the server failed: {e}"),
            }
        });
        Ok(())
    }

    /// A server that is not being removed.
    fn find_settled(
        &self,
        st: &State,
        pool: &str,
        server: &str,
    ) -> Result<Arc<crate::balancer::Backend>, ChangeError> {
        let b = self.find(pool, server)?;
        if st.removing.contains(&(pool.to_string(), server.to_string())) {
            return Err(ChangeError::Removing {
                pool: pool.to_string(),
                server: server.to_string(),
            });
        }
        Ok(b)
    }

    fn find(&self, pool: &str, server: &str) -> Result<Arc<crate::balancer::Backend>, ChangeError> {
        let rt = self.runtime.load();
        let p = rt
            .pool(pool)
            .ok_or_else(|| ChangeError::NoPool(pool.to_string()))?;
        p.balancer
            .servers()
            .iter()
            .find(|s| s.name == server)
            .cloned()
            .ok_or_else(|| ChangeError::NoServer {
                pool: pool.to_string(),
                server: server.to_string(),
            })
    }

    /// Builds and swaps in a runtime from the file's model and the runtime
    /// changes, then saves the changes.
    /// Makes runtime change `op` to one server's entries of `st.changes`
    /// (the running pools are rebuilt by the caller); with `[fleet]`,
    /// published first (see [`App::publish`]).
    async fn change(
        &self,
        st: &mut State,
        pool: &str,
        server: &str,
        op: impl Fn(&mut super::changes::Changes),
    ) -> Result<(), ChangeError> {
        let before = st.changes.clone();
        op(&mut st.changes);
        self.publish(st, before, pool, server, op).await
    }

    /// With `[fleet]`: writes the server's runtime changes to etcd before
    /// they are made here, so that every instance makes them. `op` is the
    /// change, already made to `st.changes` (from `before`). When the
    /// server was changed on another instance since this one saw it, its
    /// record is taken and `op` made again on top (so a weight here and a
    /// drain there both stand); a server removed there stays removed and
    /// this change is refused. An etcd that cannot be reached refuses the
    /// change. On refusal the changes go back to `before`.
    async fn publish(
        &self,
        st: &mut State,
        before: super::changes::Changes,
        pool: &str,
        server: &str,
        op: impl Fn(&mut super::changes::Changes),
    ) -> Result<(), ChangeError> {
        let Some(node) = st.model.fleet.as_ref().map(|f| f.node.clone()) else {
            return Ok(());
        };
        let key = (pool.to_string(), server.to_string());
        let mut store = self.fleet_store.lock().await;
        let Some(store) = store.as_mut() else {
            st.changes = before;
            return Err(ChangeError::Fleet(
                "the fleet's etcd cannot be reached: a change now would reach this instance only; try again when it is back".into(),
            ));
        };
        let mut seen = self.fleet_seen(&key);
        let mut merged_in = false;
        for _ in 0..3 {
            let record = super::fleet::record_of(&st.changes, pool, server, &node);
            match store.put_record(pool, server, &record, seen).await {
                Ok(rev) => {
                    self.fleet_saw(key, rev);
                    // Another instance's change came in with this one: the
                    // running pools take both now.
                    if merged_in {
                        self.rebuild(st)?;
                    }
                    return Ok(());
                }
                Err(crate::fleet::FleetError::ChangedElsewhere { by, current, .. }) => {
                    let (theirs, rev) = current.map(|c| *c).unwrap_or_default();
                    let was_added = before.added.iter().any(|a| a.pool == pool && a.name == server);
                    if theirs.removed || (was_added && theirs.added.is_none()) {
                        st.changes = before;
                        return Err(ChangeError::Conflict(format!(
                            "{pool}/{server} was removed on another instance ({by}) meanwhile"
                        )));
                    }
                    let mut merged = before.clone();
                    super::fleet::apply_record(&mut merged, pool, server, &theirs);
                    op(&mut merged);
                    st.changes = merged;
                    seen = rev;
                    merged_in = true;
                }
                Err(e) => {
                    st.changes = before;
                    return Err(ChangeError::Fleet(e.to_string()));
                }
            }
        }
        st.changes = before;
        Err(ChangeError::Conflict(format!(
            "{pool}/{server} keeps changing on other instances: try again"
        )))
    }

    /// The etcd revision of a server's record this instance last saw (0:
    /// none).
    pub(super) fn fleet_seen(&self, key: &(String, String)) -> i64 {
        self.fleet_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn fleet_saw(&self, key: (String, String), rev: i64) {
        self.fleet_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, rev);
    }

    /// A server's record from another instance, made here: the server's
    /// runtime changes replaced by the record's, then the pools rebuilt.
    pub(super) async fn adopt(
        &self,
        pool: &str,
        server: &str,
        record: &crate::fleet::ServerRecord,
        rev: i64,
    ) -> Result<(), ChangeError> {
        let key = (pool.to_string(), server.to_string());
        // Under the state lock: what was seen and the changes made move
        // together (a change made here meanwhile compares with both).
        let mut st = self.state.lock().await;
        if self.fleet_seen(&key) >= rev {
            return Ok(());
        }
        super::fleet::apply_record(&mut st.changes, pool, server, record);
        self.fleet_saw(key, rev);
        self.rebuild(&mut st)?;
        // Drains are states of the running servers: set both ways.
        if let Some(b) = self
            .runtime
            .load()
            .pool(pool)
            .and_then(|p| p.balancer.servers().iter().find(|s| s.name == server).cloned())
        {
            b.state.set_admin(if record.drained {
                AdminState::Draining
            } else {
                AdminState::Active
            });
        }
        tracing::info!(pool, server, by = %record.by, "fleet: runtime change from another instance applied");
        Ok(())
    }

    fn rebuild(&self, st: &mut State) -> Result<(), ChangeError> {
        let mut effective = st.model.clone();
        for w in st.changes.apply(&mut effective) {
            tracing::warn!("{w}");
        }
        let prev = self.runtime.load_full();
        let rt = Runtime::build(&effective, &st.bindings, Some(&prev));
        apply_drained(&rt, &st.changes);
        self.runtime.store(Arc::new(rt));
        crate::runtime::retire_gone(&prev, &self.runtime.load());
        st.health.reconcile(&self.runtime.load());
        self.save(st)
    }

    fn save(&self, st: &State) -> Result<(), ChangeError> {
        st.changes.save(&self.state_path).map_err(|source| {
            ChangeError::App(AppError::SaveState {
                path: self.state_path.display().to_string(),
                source,
            })
        })
    }

    /// Retries so far in a pool (for the admin API).
    pub fn pool_retries(&self, pool: &str) -> u64 {
        self.runtime
            .load()
            .pool(pool)
            .map_or(0, |p| p.stats.retries.load(Ordering::Relaxed))
    }
}

/// Whether the config file (runtime changes not applied) has this server.
fn in_file(st: &State, pool: &str, server: &str) -> bool {
    st.model
        .pools
        .iter()
        .any(|p| p.name == pool && p.servers.iter().any(|s| s.name == server))
}

/// Settings a reload cannot change in a running process.
fn restart_only(old: &Model, new: &Model) -> Vec<String> {
    let mut w = Vec::new();
    if old.workers != new.workers {
        w.push("runtime.workers changed: takes effect after a restart".to_string());
    }
    if old.state_dir != new.state_dir {
        w.push("runtime.state_dir changed: takes effect after a restart".to_string());
    }
    if old.admin != new.admin {
        w.push("[admin] changed: takes effect after a restart".to_string());
    }
    if old.origins != new.origins {
        w.push("[[origin]] entries changed: take effect after a restart".to_string());
    }
    if old.log.level != new.log.level || old.log.json != new.log.json {
        w.push("[log] changed: takes effect after a restart".to_string());
    }
    if old.peers != new.peers {
        w.push("[cluster] peers changed: take effect after a restart".to_string());
    }
    if old.cluster != new.cluster {
        w.push("[cluster] changed: takes effect after a restart (until then the running connection, or none, is used)".to_string());
    }
    w
}
