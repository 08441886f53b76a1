//! The live state of one server that decides whether it may take a new
//! request: health (from active checks), passive ejection, the operator's
//! drain, slow start after recovery, and a cap on requests in flight.
//!
//! What a pick reads is atomics: the proxy reads it on every pick,
//! health-check tasks and the admin API write it. What the checks saw, for
//! operators ([`HealthLog`]: the last check with its detail and timing,
//! why the server is down, since when, the recent transitions), sits
//! behind a lock that only a check (once per interval), a verdict and the
//! admin API take.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::units::clock_ms;

/// What the active health check last concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No verdict yet (or no active check configured).
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The operator's wishes for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Active,
    /// No new requests; requests in flight finish.
    Draining,
}

/// Per-server state shared by the proxy, health checks and the admin API.
#[derive(Debug)]
pub struct ServerState {
    health: AtomicU8,
    admin: AtomicU8,
    /// Draining to be removed (an operator's DELETE).
    removing: std::sync::atomic::AtomicBool,
    /// `clock_ms()` until which the server is ejected; 0 = not ejected.
    ejected_until: AtomicU64,
    /// `clock_ms()` of the last ejection (0: never): failures of requests
    /// sent before it do not count again.
    ejected_at: AtomicU64,
    ejections: AtomicU32,
    consecutive_failures: AtomicU32,
    /// `clock_ms()` when the server last became able to take traffic (slow start).
    available_since: AtomicU64,
    /// Last active check: 0 none yet, 1 passed, 2 failed.
    last_check: AtomicU8,
    /// Health verdict changes so far.
    transitions: AtomicU64,
    log: Mutex<HealthLog>,
}

/// Transitions kept per server.
pub const RECENT_TRANSITIONS: usize = 10;

/// What the health checks saw of a server, for operators.
#[derive(Debug, Clone, Default)]
pub struct HealthLog {
    /// The last active check.
    pub last: Option<CheckResult>,
    /// Why the server is down (the check's failure, or the ejection).
    pub reason: Option<String>,
    /// When the current verdict began (none yet: unknown since start).
    pub since: Option<SystemTime>,
    /// The latest verdict changes, oldest first.
    pub recent: VecDeque<Transition>,
}

/// One active check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub at: SystemTime,
    pub passed: bool,
    /// What it saw: `HTTP 200`, `connect to …: Connection refused`, `no
    /// answer within 2s`, a database role.
    pub detail: String,
    pub took: Duration,
}

/// One verdict change.
#[derive(Debug, Clone)]
pub struct Transition {
    pub at: SystemTime,
    pub to: Health,
    pub reason: Option<String>,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            health: AtomicU8::new(0),
            admin: AtomicU8::new(0),
            removing: std::sync::atomic::AtomicBool::new(false),
            ejected_until: AtomicU64::new(0),
            ejected_at: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            available_since: AtomicU64::new(0),
            last_check: AtomicU8::new(0),
            transitions: AtomicU64::new(0),
            log: Mutex::default(),
        }
    }
}

impl ServerState {
    pub fn health(&self) -> Health {
        match self.health.load(Relaxed) {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Sets the health verdict; returns the previous one.
    pub fn set_health(&self, h: Health) -> Health {
        self.set_health_because(h, None)
    }

    /// Sets the health verdict, saying why (kept while the server is
    /// down, and with the transition); returns the previous one.
    pub fn set_health_because(&self, h: Health, reason: Option<String>) -> Health {
        let prev = self.set_verdict(h);
        if prev != h {
            let at = SystemTime::now();
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.since = Some(at);
            log.reason = (h == Health::Down).then(|| reason.clone()).flatten();
            if log.recent.len() == RECENT_TRANSITIONS {
                log.recent.pop_front();
            }
            log.recent.push_back(Transition { at, to: h, reason });
        }
        prev
    }

    fn set_verdict(&self, h: Health) -> Health {
        let v = match h {
            Health::Unknown => 0,
            Health::Up => 1,
            Health::Down => 2,
        };
        let prev = self.health.swap(v, Relaxed);
        if prev != v {
            self.transitions.fetch_add(1, Relaxed);
        }
        if h == Health::Up && prev != 1 {
            self.available_since.store(clock_ms(), Relaxed);
            self.consecutive_failures.store(0, Relaxed);
            // The active check found it answering again: an ejection
            // (which marked it down) ends here.
            self.ejected_until.store(0, Relaxed);
        }
        match prev {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }

    /// Health verdict changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Relaxed)
    }

    /// Records the result of an active check.
    pub fn record_check(&self, passed: bool) {
        self.last_check.store(if passed { 1 } else { 2 }, Relaxed);
    }

    /// Records an active check with what it saw and how long it took.
    pub fn record_check_result(&self, passed: bool, detail: String, took: Duration) {
        self.record_check(passed);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.last = Some(CheckResult {
            at: SystemTime::now(),
            passed,
            detail,
            took,
        });
    }

    /// What the checks saw (a copy).
    pub fn health_log(&self) -> HealthLog {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last active check's result, if any.
    pub fn last_check(&self) -> Option<bool> {
        match self.last_check.load(Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    pub fn admin(&self) -> AdminState {
        if self.admin.load(Relaxed) == 1 {
            AdminState::Draining
        } else {
            AdminState::Active
        }
    }

    /// Marks the server as draining to be removed.
    pub fn set_removing(&self) {
        self.removing.store(true, Relaxed);
    }

    /// Whether the server drains to be removed.
    pub fn removing(&self) -> bool {
        self.removing.load(Relaxed)
    }

    pub fn set_admin(&self, a: AdminState) {
        self.admin
            .store(if a == AdminState::Draining { 1 } else { 0 }, Relaxed);
    }

    /// Is the server ejected at `now` (a `clock_ms()` value)?
    pub fn ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Relaxed)
    }

    pub fn ejections(&self) -> u32 {
        self.ejections.load(Relaxed)
    }

    /// Ejects for `base` × the number of ejections so far (capped at 10×).
    /// Returns how long.
    pub fn eject(&self, base: Duration) -> Duration {
        let n = self.ejections.fetch_add(1, Relaxed).saturating_add(1).min(10);
        let d = base.saturating_mul(n);
        let now = clock_ms();
        let until = now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.ejected_at.store(now, Relaxed);
        self.ejected_until.store(until, Relaxed);
        self.consecutive_failures.store(0, Relaxed);
        d
    }

    /// Records a failed request sent at `sent_ms` (a `clock_ms()` value);
    /// returns the consecutive failures so far. A failure while the server
    /// is ejected, or of a request sent before its last ejection, says
    /// nothing new: it is not counted (None), so it cannot extend the
    /// ejection.
    pub fn record_failure(&self, sent_ms: u64) -> Option<u32> {
        let at = self.ejected_at.load(Relaxed);
        if at != 0 && (sent_ms <= at || self.ejected(clock_ms())) {
            return None;
        }
        Some(self.consecutive_failures.fetch_add(1, Relaxed).saturating_add(1))
    }

    /// Records a good response.
    pub fn record_success(&self) {
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
    }

    /// Starts (or restarts) slow start now.
    pub fn mark_available_now(&self) {
        self.available_since.store(clock_ms(), Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn set_available_since(&self, ms: u64) {
        self.available_since.store(ms, Relaxed);
    }

    /// Share of its normal traffic the server takes at `now` during a slow
    /// start of `ramp` (1.0 when done or not configured).
    pub fn slow_start_factor(&self, now: u64, ramp: Duration) -> f64 {
        let since = self.available_since.load(Relaxed);
        let ramp_ms = ramp.as_millis() as f64;
        if since == 0 || ramp_ms <= 0.0 {
            return 1.0;
        }
        let f = now.saturating_sub(since) as f64 / ramp_ms;
        f.clamp(0.05, 1.0)
    }
}
