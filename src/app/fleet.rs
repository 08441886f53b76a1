//! An instance of a fleet (`[fleet]`): the configuration it starts from,
//! and the task that watches etcd for new revisions, applies each as a hot
//! reload, keeps the last applied one on disk, and reports what it runs
//! under `status/NODE`. Without etcd it keeps serving and reconnects with
//! backoff (1 s doubling to 30 s), then catches up.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::{App, AppError};
use crate::config::{self, model::Model};
use crate::fleet::{cache, now_unix, NodeStatus, Revision, Store};
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
    Ok(m)
}

/// The configuration a fleet instance starts with: the current revision
/// when etcd answers, else the one applied last (kept in `state_dir`),
/// else the file's own. Also the revision it is, if any.
pub async fn initial(local: Model) -> (Model, Option<Revision>) {
    let Some(settings) = local.fleet.clone() else {
        return (local, None);
    };
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

/// One connection's life: catch up with the current revision, then apply
/// each new one as it comes.
async fn follow(
    app: &Arc<App>,
    settings: &crate::config::model::FleetSettings,
    stats: &FleetStats,
) -> Result<(), crate::fleet::FleetError> {
    let mut store = Store::connect(settings).await?;
    if stats.up.swap(1, Relaxed) == 0 {
        tracing::info!(node = %settings.node, "fleet: connected to etcd");
    }
    let (current, mut seen) = match store.current().await? {
        Some((r, m)) => (Some(r), m),
        None => (None, 0),
    };
    if let Some(r) = current {
        consider(app, &mut store, settings, stats, r).await?;
    } else {
        report(&mut store, settings, stats, None).await?;
    }
    let mut watch = store.watch_current(seen).await?;
    loop {
        let Some(resp) = watch
            .message()
            .await
            .map_err(|e| crate::fleet::FleetError::Etcd {
                endpoints: settings.endpoints.join(", "),
                source: e,
            })?
        else {
            return Ok(());
        };
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            if kv.mod_revision() <= seen || kv.value().is_empty() {
                continue;
            }
            seen = kv.mod_revision();
            match serde_json::from_slice::<Revision>(kv.value()) {
                Ok(r) => consider(app, &mut store, settings, stats, r).await?,
                Err(e) => tracing::error!("fleet: the current revision in etcd cannot be read: {e}"),
            }
        }
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
