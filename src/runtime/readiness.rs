//! Whether this instance should be sent traffic (`GET /health/ready`):
//! its listeners are bound, every server with an active check has had a
//! first verdict, and it is not shutting down. A load balancer or
//! keepalived in front asks it; liveness (`GET /health/live`) only says
//! the process answers.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::Runtime;

#[derive(Debug, Default)]
pub struct Readiness {
    bound: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    /// Every listener of the first configuration is bound.
    pub fn set_bound(&self) {
        self.bound.store(true, Relaxed);
    }

    /// Shutting down: not ready any more, for good.
    pub fn start_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Ready, or what it waits for, in words.
    pub fn check(&self, rt: &Runtime) -> Result<(), Vec<String>> {
        if self.draining.load(Relaxed) {
            return Err(vec!["shutting down".into()]);
        }
        let mut waiting = Vec::new();
        if !self.bound.load(Relaxed) {
            waiting.push("listeners not bound yet".to_string());
        }
        for p in rt.pools.iter().filter(|p| p.has_check) {
            for s in p.balancer.servers() {
                if s.state.last_check().is_none() {
                    waiting.push(format!("first health check of {}/{}", p.name, s.name));
                }
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting)
        }
    }
}
