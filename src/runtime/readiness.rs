//! Whether this instance should be sent traffic (`GET /health/ready`):
//! every server with an active check has had a first verdict since the
//! start, and it is not shutting down. The admin API serves only after
//! the listeners are bound, so nobody can ask before. Once ready it stays
//! so until shutdown: a server added later by a reload or the admin API
//! takes traffic after its own first check, without taking the instance
//! out of rotation meanwhile. A load balancer or keepalived in front asks
//! it; liveness (`GET /health/live`) only says the process answers.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::Runtime;

#[derive(Debug)]
pub struct Readiness {
    settled: AtomicBool,
    draining: AtomicBool,
    /// Raised with `draining`, for whoever waits for a shutdown (the
    /// dashboard's event stream).
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            settled: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Readiness {
    /// Shutting down: not ready any more, for good.
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
        self.shutdown.send_replace(true);
    }

    /// Resolves (`wait_for(|d| *d)`) once a shutdown has begun.
    pub fn shutdown_watch(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Ready, or what it waits for, in words.
    pub fn check(&self, rt: &Runtime) -> Result<(), Vec<String>> {
        if self.draining.load(Relaxed) {
            return Err(vec!["shutting down".into()]);
        }
        if self.settled.load(Relaxed) {
            return Ok(());
        }
        let waiting: Vec<String> = rt
            .pools
            .iter()
            .filter(|p| p.has_check)
            .flat_map(|p| {
                p.balancer
                    .servers()
                    .iter()
                    .filter(|s| s.state.last_check().is_none())
                    .map(|s| format!("first health check of {}/{}", p.name, s.name))
            })
            .collect();
        if waiting.is_empty() {
            self.settled.store(true, Relaxed);
            Ok(())
        } else {
            Err(waiting)
        }
    }
}
