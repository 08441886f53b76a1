//! Active health checks: one task per server of every pool that has a
//! `[pool.health_check]`, probing it (`tcp` connect, an `http` request, or
//! a `mysql` login that also classifies the server as primary, replica or
//! down: see [`mysql`])
//! every interval plus jitter, and marking it up after `rise` consecutive
//! passes and down after `fall` consecutive failures. Each change is logged
//! with its reason.
//!
//! Exposes [`Supervisor`], which keeps the set of check tasks in step with
//! the running configuration (reloads and runtime changes add, keep or stop
//! tasks; a server kept across a reload keeps its task and its verdict).

pub mod mysql;
mod probe;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::balancer::{Backend, Health};
use crate::config::model::HealthCheck;
use crate::runtime::{Runtime, UpstreamTls};

pub use probe::probe;

#[cfg(test)]
mod tests;

struct Task {
    check: HealthCheck,
    /// The TLS settings it probes with (0: plaintext).
    tls: usize,
    _server: Arc<Backend>,
    handle: JoinHandle<()>,
}

/// The running check tasks, keyed by server identity.
#[derive(Default)]
pub struct Supervisor {
    tasks: HashMap<usize, Task>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Supervisor {
    /// Starts checks for servers that need one and stops the others.
    pub fn reconcile(&mut self, rt: &Runtime) {
        let mut wanted: HashMap<usize, (String, Arc<Backend>, HealthCheck, Option<UpstreamTls>)> =
            HashMap::new();
        for p in &rt.pools {
            let Some(check) = &p.health_check else { continue };
            for s in p.balancer.servers() {
                wanted.insert(
                    Arc::as_ptr(s) as usize,
                    (p.name.clone(), s.clone(), check.clone(), p.tls.clone()),
                );
            }
        }
        let tls_id = |t: &Option<UpstreamTls>| t.as_ref().map_or(0, |t| t.id);
        self.tasks.retain(|key, t| {
            let keep = wanted
                .get(key)
                .is_some_and(|(_, _, c, tls)| *c == t.check && tls_id(tls) == t.tls);
            if !keep {
                t.handle.abort();
            }
            keep
        });
        for (key, (pool, server, check, tls)) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let id = tls_id(&tls);
            let handle = tokio::spawn(run(pool, server.clone(), check.clone(), tls));
            self.tasks.insert(
                key,
                Task {
                    check,
                    tls: id,
                    _server: server,
                    handle,
                },
            );
        }
    }

    /// Stops every check.
    pub fn stop(&mut self) {
        for (_, t) in self.tasks.drain() {
            t.handle.abort();
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checks one server until aborted.
async fn run(pool: String, server: Arc<Backend>, check: HealthCheck, tls: Option<UpstreamTls>) {
    let (s, c) = (server.clone(), check.clone());
    watch(pool, server, check, move || {
        let (s, c, t) = (s.clone(), c.clone(), tls.clone());
        async move { probe(&s, &c, t.as_ref()).await }
    })
    .await
}

/// The check loop over any probe: a verdict after `rise` passes or `fall`
/// failures in a row, one probe per interval (plus jitter).
async fn watch<P, F>(pool: String, server: Arc<Backend>, check: HealthCheck, mut probe: P)
where
    P: FnMut() -> F,
    F: std::future::Future<Output = Result<String, String>>,
{
    let (mut passes, mut fails) = (0u32, 0u32);
    let mut seen = server.state.health();
    loop {
        // Someone else (passive ejection, an operator) changed the verdict:
        // count afresh from here.
        let now = server.state.health();
        if now != seen {
            passes = 0;
            fails = 0;
            seen = now;
        }
        let began = tokio::time::Instant::now();
        let result = probe().await;
        let took = began.elapsed();
        let detail = match &result {
            Ok(saw) | Err(saw) => saw.clone(),
        };
        server.state.record_check_result(result.is_ok(), detail, took);
        match result {
            Ok(_) => {
                passes += 1;
                fails = 0;
                if seen != Health::Up && passes >= check.rise {
                    server
                        .state
                        .set_health_because(Health::Up, Some(format!("{passes} checks passed")));
                    seen = Health::Up;
                    tracing::info!(pool = %pool, server = %server.name, passes, "server is up");
                }
            }
            Err(reason) => {
                fails += 1;
                passes = 0;
                if seen != Health::Down && fails >= check.fall {
                    server
                        .state
                        .set_health_because(Health::Down, Some(reason.clone()));
                    seen = Health::Down;
                    tracing::warn!(pool = %pool, server = %server.name, fails, reason = %reason, "server is down");
                } else {
                    tracing::debug!(pool = %pool, server = %server.name, reason = %reason, "health check failed");
                }
            }
        }
        tokio::time::sleep(check.interval + jitter(check.jitter)).await;
    }
}

/// A random delay in `0..=max`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::units::clock_ms());
    let r = h.finish() % (max.as_millis() as u64 + 1);
    Duration::from_millis(r)
}
