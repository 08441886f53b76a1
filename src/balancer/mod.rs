//! Pools of backend servers and the algorithms that pick one.
//!
//! This module owns:
//! - [`Backend`]: one server with live counters shared by all worker threads
//!   (requests in flight, peak-EWMA latency), and [`RequestGuard`], which
//!   keeps those counters right for the life of one request;
//! - [`Balancer`]: a pool of servers plus the algorithm that picks one
//!   per request (round robin, smooth weighted round robin, least requests,
//!   power of two choices over peak-EWMA latency, Maglev consistent hashing
//!   on a hash key), built from the config's [`Algorithm`] and [`HashKey`];
//! - [`DbState`]: a database server's role (primary, replica, down) as its
//!   last `mysql` check found it, for the TCP writer and reader endpoints;
//! - sticky cookies: when a pool names one, a client that presents a valid
//!   cookie keeps its server, and any other client is told its server in a
//!   [`Pick::set_cookie`].
//!
//! [`Balancer::pick`] is the hot path: it takes no lock (except the weighted
//! fallback for huge weight sums), and does not allocate.

mod backend;
pub mod budget;
mod cookie;
mod db;
mod ewma;
mod key;
mod least;
mod maglev;
mod p2c;
mod rng;
mod round_robin;
mod state;
mod sticky;
mod weighted;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::model::{Algorithm, HashKey};
use crate::config::syntax::is_valid_cookie_name;
use crate::units::clock_ms;

pub use backend::{Backend, HealthGate, RequestGuard};
pub use db::{
    eligible as db_eligible, no_fallback as db_no_fallback, no_replica as db_no_replica,
    readers as db_readers, writer as db_writer, DbRole, DbState, DbStatus,
};
pub use state::{AdminState, CheckResult, Health, HealthLog, ServerState, Transition};

use least::LeastRequests;
use maglev::Maglev;
use round_robin::RoundRobin;
use sticky::Sticky;
use weighted::Weighted;

/// What [`Balancer::pick`] may look at.
pub struct PickInput<'a> {
    pub client_ip: IpAddr,
    pub headers: &'a dyn crate::fields::HeaderView,
}

impl std::fmt::Debug for PickInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickInput")
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

/// The server picked for one request.
#[derive(Debug)]
pub struct Pick<'a> {
    pub server: &'a Arc<Backend>,
    /// The server's index in [`Balancer::servers`].
    pub index: usize,
    /// Set when the pool has a sticky cookie and the client did not present a valid one:
    /// the proxy adds it as a `Set-Cookie` response header.
    pub set_cookie: Option<http::HeaderValue>,
}

/// A pool of servers and the state of its algorithm.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    hash_key: HashKey,
    servers: Vec<Arc<Backend>>,
    strategy: Strategy,
    sticky: Option<Sticky>,
    gate: HealthGate,
    slow_start: std::time::Duration,
}

/// Per-algorithm state, built once in [`Balancer::new`].
#[derive(Debug)]
enum Strategy {
    RoundRobin(RoundRobin),
    Weighted(Weighted),
    LeastRequests(LeastRequests),
    P2cEwma,
    Hash(Maglev),
}

impl Balancer {
    /// Builds a pool. `hash_key` is used only by [`Algorithm::Hash`]. A
    /// `sticky_cookie` that is not a valid cookie name (see
    /// [`is_valid_cookie_name`]) turns stickiness off.
    pub fn new(
        algorithm: Algorithm,
        hash_key: HashKey,
        sticky_cookie: Option<String>,
        servers: Vec<Arc<Backend>>,
    ) -> Self {
        let strategy = match algorithm {
            Algorithm::RoundRobin => Strategy::RoundRobin(RoundRobin::default()),
            Algorithm::Weighted => Strategy::Weighted(Weighted::new(&servers)),
            Algorithm::LeastRequests => Strategy::LeastRequests(LeastRequests::default()),
            Algorithm::P2cEwma => Strategy::P2cEwma,
            Algorithm::Hash => Strategy::Hash(Maglev::new(&servers)),
        };
        let sticky = sticky_cookie.and_then(|name| Sticky::new(name, &servers));
        Self {
            algorithm,
            hash_key,
            servers,
            strategy,
            sticky,
            gate: HealthGate::UnknownOk,
            slow_start: std::time::Duration::ZERO,
        }
    }

    /// Sets which health verdicts take traffic, and the slow-start ramp of
    /// servers that (re)become available.
    pub fn with_health(mut self, gate: HealthGate, slow_start: std::time::Duration) -> Self {
        self.gate = gate;
        self.slow_start = slow_start;
        self
    }

    /// Which health verdicts take traffic in this pool.
    /// The share of its traffic server `s` takes at `now` in its slow start
    /// (1.0 when it is done, or the pool has none).
    pub fn slow_start_factor(&self, s: &Backend, now: u64) -> f64 {
        if self.slow_start.is_zero() {
            return 1.0;
        }
        s.state.slow_start_factor(now, self.slow_start)
    }

    pub fn gate(&self) -> HealthGate {
        self.gate
    }

    /// Servers that may take a request now.
    pub fn available_count(&self) -> usize {
        let now = clock_ms();
        self.servers
            .iter()
            .filter(|s| s.available(now, self.gate))
            .count()
    }

    /// Servers currently ejected by passive checks.
    pub fn ejected_count(&self) -> usize {
        let now = clock_ms();
        self.servers.iter().filter(|s| s.state.ejected(now)).count()
    }

    /// The pool's servers, in config order.
    pub fn servers(&self) -> &[Arc<Backend>] {
        &self.servers
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Picks a server for one request; None when no server may take one
    /// (none configured, all down, ejected, draining or at their limit).
    pub fn pick(&self, input: &PickInput<'_>) -> Option<Pick<'_>> {
        self.pick_avoiding(input, &[])
    }

    /// Like [`Balancer::pick`], but never one of the servers at `avoid`
    /// (indices of servers already tried for this request).
    pub fn pick_avoiding(&self, input: &PickInput<'_>, avoid: &[usize]) -> Option<Pick<'_>> {
        self.pick_at(input, avoid, clock_ms())
    }

    /// [`Balancer::pick_avoiding`] at `now` (a `clock_ms()` value the
    /// caller read already).
    pub fn pick_at(&self, input: &PickInput<'_>, avoid: &[usize], now: u64) -> Option<Pick<'_>> {
        if self.servers.is_empty() {
            return None;
        }
        if let Some(i) = self.sticky.as_ref().and_then(|s| s.lookup(input.headers)) {
            if let Some(server) = self.servers.get(i) {
                if server.available(now, self.gate) && !avoid.contains(&i) {
                    return Some(Pick {
                        server,
                        index: i,
                        set_cookie: None,
                    });
                }
            }
        }
        let ok = |j: usize| !avoid.contains(&j) && self.servers[j].available(now, self.gate);
        // Each algorithm chooses among the servers that may take the
        // request, so those share an unavailable server's turns by their
        // weights (instead of its neighbour taking them all).
        let n = self.servers.len();
        let i = match &self.strategy {
            Strategy::RoundRobin(rr) => rr.pick(n, ok),
            Strategy::Weighted(w) => w.pick(ok),
            Strategy::LeastRequests(lr) => lr.pick(&self.servers, ok),
            Strategy::P2cEwma => p2c::pick(&self.servers, ok),
            Strategy::Hash(m) => m.pick_available(key::key_hash(&self.hash_key, input), n, ok),
        }?;
        let i = self.ramp(i, now, ok);
        let server = self.servers.get(i)?;
        Some(Pick {
            server,
            index: i,
            set_cookie: self.sticky.as_ref().and_then(|s| s.set_cookie(i)),
        })
    }

    /// Slow start: a server in its ramp takes its growing share of the
    /// picks that chose it; the others go to the next available server
    /// that is not ramping (or stay, when there is none).
    fn ramp(&self, i: usize, now: u64, ok: impl Fn(usize) -> bool) -> usize {
        if self.slow_start.is_zero() {
            return i;
        }
        let ramped = |j: usize| self.servers[j].state.slow_start_factor(now, self.slow_start) >= 1.0;
        if ramped(i) {
            return i;
        }
        let f = self.servers[i].state.slow_start_factor(now, self.slow_start);
        if (rng::below(1 << 20) as f64) < f * f64::from(1u32 << 20) {
            return i;
        }
        let n = self.servers.len();
        (1..n)
            .map(|k| (i + k) % n)
            .find(|&j| ok(j) && ramped(j))
            .unwrap_or(i)
    }
}
