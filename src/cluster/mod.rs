//! State shared by the instances of a fleet, in Redis (`[cluster] redis`):
//!
//! - rate limits with `scope = "cluster"`: one bucket per rule and key for
//!   the whole fleet, decided in one round trip by a GCRA script that runs
//!   atomically in Redis ([`Cluster::rate`]);
//! - bans: every ban or lift an instance makes is written to Redis (a key
//!   that expires with the ban) and published; every instance applies what
//!   the others publish, and reads the bans in force when it (re)connects,
//!   so a restarted instance enforces them too.
//!
//! When Redis cannot be reached (or does not answer within
//! `[cluster] timeout`), decisions fall back to the instance's local
//! limiter and its local bans stay in force: limits fail open to what one
//! instance alone would allow. Each fallback is counted; the log says once
//! per episode that shared state is lost, and once that it is back. A
//! supervisor task reconnects every second.
//!
//! [`fleet`] is the other half of running as one: the fleet view, polling
//! the peers' admin APIs (`[cluster] peers`).
//!
//! Exposes [`Cluster`], [`start`] and [`fleet`].

mod bans;
pub mod fleet;
mod limit;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::model::ClusterSettings;
use crate::firewall::bans::{BanNote, Bans};

/// The connection to the fleet's Redis and what it is used for.
#[derive(Debug)]
pub struct Cluster {
    settings: ClusterSettings,
    client: redis::Client,
    conn: ArcSwapOption<ConnectionManager>,
    up: AtomicBool,
    /// Decisions made in Redis.
    pub decisions: AtomicU64,
    /// Decisions made locally because Redis could not be reached.
    pub fallbacks: AtomicU64,
    /// This process, so that it skips the bans it published itself.
    id: u64,
    bans: Arc<Bans>,
}

/// Connects (in the background) and starts sharing `bans`. The task runs
/// until aborted.
pub fn start(settings: &ClusterSettings, bans: Arc<Bans>) -> Result<(Arc<Cluster>, JoinHandle<()>), String> {
    let client = redis::Client::open(settings.redis.as_str())
        .map_err(|e| format!("[cluster] redis {}: {e}", settings.redis_shown))?;
    let (tx, rx) = mpsc::channel(1024);
    bans.share_through(tx);
    let cluster = Arc::new(Cluster {
        settings: settings.clone(),
        client,
        conn: ArcSwapOption::empty(),
        up: AtomicBool::new(false),
        decisions: AtomicU64::new(0),
        fallbacks: AtomicU64::new(0),
        id: process_id(),
        bans,
    });
    let task = tokio::spawn(cluster.clone().supervise(rx));
    Ok((cluster, task))
}

impl Cluster {
    /// Whether shared state is reachable now.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// The Redis URL without its password.
    pub fn shown(&self) -> &str {
        &self.settings.redis_shown
    }

    /// Counts a decision made locally because shared state is unreachable.
    pub fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Relaxed);
    }

    /// Marks shared state reachable or not, logging each change once.
    fn set_up(&self, up: bool, why: &str) {
        if self.up.swap(up, Relaxed) != up {
            if up {
                tracing::info!(redis = %self.settings.redis_shown, "shared state is back: cluster limits and bans are shared again");
            } else {
                tracing::warn!(redis = %self.settings.redis_shown, "shared state unreachable ({why}): using local limits and bans until it is back");
            }
        }
    }

    /// Reconnects every second while Redis is away; while connected,
    /// applies the bans others publish and publishes those made here.
    async fn supervise(self: Arc<Self>, mut outbox: mpsc::Receiver<BanNote>) {
        loop {
            match self.connect().await {
                Ok((mut conn, mut pubsub)) => {
                    // Subscribed before the stored bans are read: a ban or
                    // lift published meanwhile waits in the subscription
                    // instead of falling between the two.
                    if let Err(e) = pubsub.subscribe(bans::CHANNEL).await {
                        self.set_up(false, &format!("subscribing to {}: {e}", bans::CHANNEL));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    self.conn.store(Some(Arc::new(conn.clone())));
                    if let Err(e) = bans::load(&mut conn, &self.bans).await {
                        tracing::warn!("reading the shared bans: {e}");
                    }
                    self.set_up(true, "");
                    let why = bans::exchange(&self, &mut conn, pubsub, &mut outbox).await;
                    self.conn.store(None);
                    self.set_up(false, &why);
                }
                Err(e) => self.set_up(false, &e),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn connect(&self) -> Result<(ConnectionManager, redis::aio::PubSub), String> {
        let limit = Duration::from_secs(2);
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(limit))
            .set_response_timeout(Some(self.settings.timeout.max(Duration::from_millis(500))))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            limit,
            ConnectionManager::new_with_config(self.client.clone(), cfg),
        )
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
        let pubsub = tokio::time::timeout(limit, self.client.get_async_pubsub())
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|e| e.to_string())?;
        Ok((conn, pubsub))
    }
}

/// A random identity for this process.
fn process_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}
