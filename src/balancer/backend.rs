//! One backend server and the guard that tracks a request to it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ewma::PeakEwma;
use super::state::{AdminState, Health, ServerState};

/// The counters a request to a [`Backend`] updates (see `Backend::hot`).
#[derive(Debug)]
#[repr(align(128))]
struct Hot {
    in_flight: AtomicU32,
    latency: PeakEwma,
}

/// One backend server with live counters (shared by all worker threads).
#[derive(Debug)]
pub struct Backend {
    /// Unique in the process, never reused: what connections kept for the
    /// server are keyed by (a server replaced by a reload is another one).
    id: u64,
    pub name: String,
    pub addr: SocketAddr,
    /// Relative share for the weighted and hash algorithms; 0 counts as 1.
    /// Read when a pool is built; a change takes effect with the next build.
    weight: AtomicU32,
    /// Most requests in flight at once (0 = no limit): past it the server
    /// is skipped, and a pool with no server left answers 503.
    max_in_flight: u32,
    /// Health, ejection, drain and slow start.
    pub state: ServerState,
    /// Requests and latencies, for metrics.
    pub stats: crate::stats::ServerStats,
    /// Database role, for pools with a `mysql` check.
    pub db: super::db::DbState,
    /// What every request to the server writes, on cache lines of its
    /// own: the fields above, read on every pick, stay shared-clean.
    hot: Hot,
    /// Origin of the latency estimate's clock.
    born: Instant,
    /// Raised when the server leaves the running configuration, so that
    /// its pooled connections close.
    retired: tokio::sync::watch::Sender<bool>,
    /// Its idle HTTP/1.1 connections, shared by every worker thread.
    pub conns: crate::conns::IdleConns,
}

impl Backend {
    pub fn new(name: String, addr: SocketAddr, weight: u32) -> Self {
        Self::with_limit(name, addr, weight, 0)
    }

    /// A server that takes at most `max_in_flight` requests at once (0 = no limit).
    pub fn with_limit(name: String, addr: SocketAddr, weight: u32, max_in_flight: u32) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Self {
            id: IDS.fetch_add(1, Relaxed),
            name,
            addr,
            weight: AtomicU32::new(weight),
            max_in_flight,
            state: ServerState::default(),
            stats: Default::default(),
            db: Default::default(),
            hot: Hot {
                in_flight: AtomicU32::new(0),
                latency: PeakEwma::new(),
            },
            born: Instant::now(),
            retired: tokio::sync::watch::Sender::new(false),
            conns: Default::default(),
        }
    }

    /// The server has left the running configuration (removed, or replaced
    /// by a reload): connections kept open for it should close.
    pub fn retire(&self) {
        self.retired.send_replace(true);
        self.conns.retire();
    }

    /// Resolves `changed`/`wait_for` when [`Self::retire`] is called.
    pub fn retirement(&self) -> tokio::sync::watch::Receiver<bool> {
        self.retired.subscribe()
    }

    /// See the field.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn weight(&self) -> u32 {
        self.weight.load(Relaxed)
    }

    pub fn set_weight(&self, w: u32) {
        self.weight.store(w, Relaxed);
    }

    pub fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// May this server take a new request now? `gate_on_health`: the pool
    /// has an active check and unknown servers wait for it.
    pub fn available(&self, now: u64, gate: HealthGate) -> bool {
        let health_ok = match (self.state.health(), gate) {
            (Health::Up, _) => true,
            (Health::Down, _) => false,
            (Health::Unknown, HealthGate::UpOnly) => false,
            (Health::Unknown, HealthGate::UnknownOk) => true,
        };
        health_ok
            && self.state.admin() == AdminState::Active
            && !self.state.ejected(now)
            && (self.max_in_flight == 0 || self.in_flight() < self.max_in_flight)
    }

    /// Is the server up but full (at its in-flight limit)?
    pub fn saturated(&self) -> bool {
        self.max_in_flight != 0 && self.in_flight() >= self.max_in_flight
    }

    /// Requests started with [`Backend::begin`] whose guard is still alive.
    pub fn in_flight(&self) -> u32 {
        self.hot.in_flight.load(Relaxed)
    }

    /// The current peak-EWMA latency estimate.
    pub fn latency_ewma(&self) -> Duration {
        let ns = self.hot.latency.estimate(self.clock(Instant::now()));
        Duration::try_from_secs_f64(ns / 1e9).unwrap_or(Duration::MAX)
    }

    /// Marks a request as started; the guard decrements in-flight when dropped and records
    /// the elapsed time (start → drop, or → `guard.record(latency)`) into the peak-EWMA.
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.begin_at(Instant::now())
    }

    /// [`Backend::begin`] for a request that started at `start` (a time
    /// the caller read already).
    pub fn begin_at(self: &Arc<Self>, start: Instant) -> RequestGuard {
        self.hot.in_flight.fetch_add(1, Relaxed);
        RequestGuard {
            backend: Arc::clone(self),
            start,
            recorded: false,
        }
    }

    /// Feeds one latency sample, taken at `at`, into the peak-EWMA.
    pub(crate) fn record_latency(&self, latency: Duration, at: Instant) {
        let now = self.clock(at);
        self.hot.latency.observe(latency.as_nanos() as f64, now);
    }

    /// The P2C cost at `now`: latency estimate × (in flight + 1).
    pub(super) fn cost(&self, now: Instant) -> f64 {
        self.hot.latency.estimate(self.clock(now)) * (f64::from(self.in_flight()) + 1.0)
    }

    /// Nanoseconds from `born` to `now`.
    fn clock(&self, now: Instant) -> u64 {
        let ns = now.saturating_duration_since(self.born).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// Whether servers with no health verdict yet take traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthGate {
    /// Only servers the active check found up (pools with an active check).
    UpOnly,
    /// Unknown servers too (pools without an active check, or configured so).
    UnknownOk,
}

/// One request in flight to a [`Backend`]; see [`Backend::begin`].
#[derive(Debug)]
pub struct RequestGuard {
    backend: Arc<Backend>,
    start: Instant,
    recorded: bool,
}

impl RequestGuard {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Records `latency` (e.g. time to response headers) now, instead of the
    /// time until drop. Only the first call records; the request stays in
    /// flight until the guard is dropped.
    pub fn record(&mut self, latency: Duration) {
        self.record_at(latency, Instant::now());
    }

    /// [`RequestGuard::record`] of a latency measured at `at`.
    pub fn record_at(&mut self, latency: Duration, at: Instant) {
        if !self.recorded {
            self.recorded = true;
            self.backend.record_latency(latency, at);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if !self.recorded {
            let now = Instant::now();
            self.backend
                .record_latency(now.saturating_duration_since(self.start), now);
        }
        self.backend.hot.in_flight.fetch_sub(1, Relaxed);
    }
}
