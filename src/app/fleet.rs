//! An instance of a fleet (`[fleet]`): the configuration it starts from,
//! and the task that watches etcd for new revisions, applies each as a hot
//! reload, keeps the last applied one on disk, and reports what it runs
//! under `status/NODE`; the same task applies the runtime changes (add,
//! weight, drain, remove) other instances made, one record per server.
//! Without etcd it keeps serving and reconnects with backoff (1 s doubling
//! to 30 s), then catches up.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::changes::{AddedServer, Changes};
use super::{App, AppError};
use crate::config::{self, model::Model};
use crate::fleet::{cache, now_unix, AddedRecord, NodeStatus, Revision, ServerRecord, Store, Update};
use crate::stats::FleetStats;

/// `local` (the config file: its `[fleet]` and `[runtime] state_dir`, and
/// the directory paths resolve against) with `rev`'s configuration.
pub fn compose(local: &Model, rev: &Revision) -> Result<Model, AppError> {
    let source = local.source.clone();
    let base = source
        .as_deref()
        .and_then(std::path::Path::parent)
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let name = format!("fleet revision {}", rev.revision);
    let mut m = config::load_str(&rev.document, &name, &base, &crate::tls::SystemEnv)?;
    m.fleet = local.fleet.clone();
    m.state_dir = local.state_dir.clone();
    m.source = source;
    if let Some(problem) = m.fleet_problem() {
        return Err(AppError::Loader(format!("{name}: {problem}")));
    }
    Ok(m)
}

/// The configuration a fleet instance starts with: the current revision
/// when etcd answers, else the one applied last (kept in `state_dir`),
/// else the file's own. Also the revision it is, if any.
pub async fn initial(local: Model) -> (Model, Option<Revision>) {
    let Some(settings) = local.fleet.clone() else {
        return (local, None);
    };
    match super::fleet_acme::share_ca(&settings, &local.state_dir).await {
        Ok(true) => tracing::info!("fleet: the internal CA is now the fleet's"),
        Ok(false) => {}
        Err(e) => tracing::warn!(
            "fleet: the fleet's internal CA could not be read, this instance's own serves meanwhile: {e}"
        ),
    }
    let from_etcd = match Store::connect(&settings).await {
        Ok(mut s) => match s.current().await {
            Ok(r) => r.map(|(r, _)| r),
            Err(e) => {
                tracing::warn!("fleet: {e}");
                None
            }
        },
        Err(e) => {
            tracing::warn!("fleet: etcd cannot be reached, starting from the last applied revision: {e}");
            None
        }
    };
    let candidates = from_etcd.into_iter().chain(cache::load(&local.state_dir));
    for rev in candidates {
        match compose(&local, &rev) {
            Ok(m) => {
                tracing::info!(
                    revision = rev.revision,
                    "fleet: starting from revision {}",
                    rev.revision
                );
                return (m, Some(rev));
            }
            Err(e) => tracing::error!(
                revision = rev.revision,
                "fleet: revision {} refused: {e}",
                rev.revision
            ),
        }
    }
    (local, None)
}

/// Watches the fleet's revisions until the task is aborted.
pub async fn run(app: Arc<App>, settings: crate::config::model::FleetSettings, stats: Arc<FleetStats>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match follow(&app, &settings, &stats).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                if stats.up.swap(0, Relaxed) == 1 {
                    tracing::warn!(
                        "fleet: etcd lost, serving revision {} meanwhile: {e}",
                        stats.revision.load(Relaxed)
                    );
                } else {
                    tracing::debug!("fleet: {e}");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One connection's life: catch up with the current revision and the
/// servers' runtime records (publishing this instance's own that the
/// fleet does not have yet), then apply each change as it comes.
async fn follow(
    app: &Arc<App>,
    settings: &crate::config::model::FleetSettings,
    stats: &FleetStats,
) -> Result<(), crate::fleet::FleetError> {
    let mut store = Store::connect(settings).await?;
    let start = store.etcd_revision().await?;
    let result = async {
        match store.current().await? {
            Some((r, _)) => consider(app, &mut store, settings, stats, r).await?,
            None => report(&mut store, settings, stats, None).await?,
        }
        let records = store.runtime_records().await?;
        for (pool, server, record, rev) in &records {
            if let Err(e) = app.adopt(pool, server, record, *rev).await {
                tracing::warn!(pool = %pool, server = %server, "fleet: a runtime change cannot be made here: {e}");
            }
        }
        seed(app, &mut store, settings, &records).await;
        *app.fleet_store.lock().await = Some(store.clone());
        // Up: caught up, and changes made here now reach the fleet.
        if stats.up.swap(1, Relaxed) == 0 {
            tracing::info!(node = %settings.node, "fleet: connected to etcd");
        }
        let mut watch = store.watch_all(start).await?;
        loop {
            let Some(resp) = watch.message().await.map_err(|e| crate::fleet::FleetError::Etcd {
                endpoints: settings.endpoints.join(", "),
                source: e,
            })?
            else {
                return Ok(());
            };
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                match store.update(kv.key(), kv.value(), kv.mod_revision()) {
                    Some(Update::Revision(r)) => consider(app, &mut store, settings, stats, r).await?,
                    Some(Update::Server {
                        pool,
                        server,
                        record,
                        mod_revision,
                    }) => {
                        if let Err(e) = app.adopt(&pool, &server, &record, mod_revision).await {
                            tracing::warn!(pool = %pool, server = %server, "fleet: a runtime change cannot be made here: {e}");
                        }
                    }
                    Some(Update::Challenge { kind, id, answer }) => {
                        let st = app.state.lock().await;
                        match kind.as_str() {
                            crate::tls::acme::TLS_ALPN_01 => st.acme.fleet_challenge(&id, answer.as_deref()),
                            crate::tls::acme::HTTP_01 => st.bindings.acme_http01.set(&id, answer),
                            _ => {}
                        }
                    }
                    None => {}
                }
            }
        }
    }
    .await;
    *app.fleet_store.lock().await = None;
    result
}

/// Publishes this instance's runtime changes to servers the fleet has no
/// record of (changes made before `[fleet]`, or while etcd was away).
async fn seed(
    app: &Arc<App>,
    store: &mut Store,
    settings: &crate::config::model::FleetSettings,
    known: &[(String, String, ServerRecord, i64)],
) {
    let changes = app.state.lock().await.changes.clone();
    for (pool, server) in servers_of(&changes) {
        if known.iter().any(|(p, s, _, _)| *p == pool && *s == server) {
            continue;
        }
        let record = record_of(&changes, &pool, &server, &settings.node);
        match store.put_record(&pool, &server, &record, 0).await {
            Ok(rev) => app.fleet_saw((pool, server), rev),
            Err(e) => tracing::debug!("fleet: {e}"),
        }
    }
}

/// Every (pool, server) a runtime change names.
fn servers_of(c: &Changes) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    out.extend(c.added.iter().map(|a| (a.pool.clone(), a.name.clone())));
    for map in [&c.drained, &c.removed] {
        for (p, servers) in map {
            out.extend(servers.iter().map(|s| (p.clone(), s.clone())));
        }
    }
    for (p, w) in &c.weights {
        out.extend(w.keys().map(|s| (p.clone(), s.clone())));
    }
    out
}

/// One server's runtime changes as the fleet keeps them.
pub fn record_of(c: &Changes, pool: &str, server: &str, node: &str) -> ServerRecord {
    ServerRecord {
        added: c
            .added
            .iter()
            .find(|a| a.pool == pool && a.name == server)
            .map(|a| AddedRecord {
                address: a.address,
                weight: a.weight,
                max_requests: a.max_requests,
            }),
        weight: c.weights.get(pool).and_then(|w| w.get(server)).copied(),
        drained: c.is_drained(pool, server),
        removed: c.removed.get(pool).is_some_and(|r| r.contains(server)),
        by: node.to_string(),
    }
}

/// Replaces one server's runtime changes with a fleet record.
pub fn apply_record(c: &mut Changes, pool: &str, server: &str, r: &ServerRecord) {
    c.forget(pool, server);
    if let Some(removed) = c.removed.get_mut(pool) {
        removed.remove(server);
    }
    c.removed.retain(|_, r| !r.is_empty());
    if let Some(a) = &r.added {
        c.added.push(AddedServer {
            pool: pool.to_string(),
            name: server.to_string(),
            address: a.address,
            weight: a.weight,
            max_requests: a.max_requests,
        });
    }
    if let Some(w) = r.weight {
        c.weights
            .entry(pool.to_string())
            .or_default()
            .insert(server.to_string(), w);
    }
    if r.drained {
        c.drained
            .entry(pool.to_string())
            .or_default()
            .insert(server.to_string());
    }
    if r.removed {
        c.mark_removed(pool, server);
    }
}

/// Applies `r` unless it runs already; keeps it and says so in etcd.
async fn consider(
    app: &Arc<App>,
    store: &mut Store,
    settings: &crate::config::model::FleetSettings,
    stats: &FleetStats,
    r: Revision,
) -> Result<(), crate::fleet::FleetError> {
    let running = app.fleet_applied();
    if running
        .as_ref()
        .is_some_and(|x| x.revision == r.revision && x.hash == r.hash)
    {
        return report(store, settings, stats, None).await;
    }
    match app.apply_revision(&r).await {
        Ok(_) => {
            stats.applies.fetch_add(1, Relaxed);
            stats.revision.store(r.revision, Relaxed);
            if let Err(e) = cache::save(&app.state_dir, &r) {
                tracing::warn!(
                    "fleet: cannot keep revision {} in {}: {e}",
                    r.revision,
                    app.state_dir.display()
                );
            }
            tracing::info!(revision = r.revision, author = %r.author, "fleet: revision {} applied", r.revision);
            report(store, settings, stats, None).await
        }
        Err(e) => {
            stats.refusals.fetch_add(1, Relaxed);
            tracing::error!(
                revision = r.revision,
                "fleet: revision {} refused, revision {} stays: {e}",
                r.revision,
                stats.revision.load(Relaxed)
            );
            report(store, settings, stats, Some((r.revision, e.to_string()))).await
        }
    }
}

async fn report(
    store: &mut Store,
    settings: &crate::config::model::FleetSettings,
    stats: &FleetStats,
    refused: Option<(u64, String)>,
) -> Result<(), crate::fleet::FleetError> {
    let (refused_revision, error) = match refused {
        Some((r, e)) => (Some(r), Some(e)),
        None => (None, None),
    };
    store
        .set_status(&NodeStatus {
            node: settings.node.clone(),
            revision: stats.revision.load(Relaxed),
            time_unix: now_unix(),
            error,
            refused_revision,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_the_changes() {
        let mut c = Changes::default();
        c.added.push(AddedServer {
            pool: "web".into(),
            name: "n".into(),
            address: "127.0.0.1:9".parse().expect("addr"),
            weight: 3,
            max_requests: 0,
        });
        c.drained.entry("web".into()).or_default().insert("n".into());
        c.mark_removed("web", "old");
        let n = record_of(&c, "web", "n", "lb1");
        assert!(n.added.is_some() && n.drained && !n.removed);
        let old = record_of(&c, "web", "old", "lb1");
        assert!(old.removed && old.added.is_none());
        let mut other = Changes::default();
        apply_record(&mut other, "web", "n", &n);
        apply_record(&mut other, "web", "old", &old);
        assert_eq!(other, c);
        // An empty record: the server as the configuration says.
        apply_record(&mut other, "web", "n", &ServerRecord::default());
        assert!(other.added.is_empty() && !other.is_drained("web", "n"));
        assert_eq!(servers_of(&c).len(), 2);
    }
}
