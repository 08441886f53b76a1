//! Pools of backend servers and the algorithms that pick one.
//!
//! This module owns:
//! - [`Backend`]: one server with live counters shared by all worker threads
//!   (requests in flight, peak-EWMA latency), and [`RequestGuard`], which
//!   keeps those counters right for the life of one request;
//! - [`Balancer`]: a pool of servers plus the [`Algorithm`] that picks one
//!   per request (round robin, smooth weighted round robin, least requests,
//!   power of two choices over peak-EWMA latency, Maglev consistent hashing
//!   on a [`HashKey`]);
//! - sticky cookies: when a pool names one, a client that presents a valid
//!   cookie keeps its server, and any other client is told its server in a
//!   [`Pick::set_cookie`].
//!
//! [`Balancer::pick`] is the hot path: it takes no lock (except the weighted
//! fallback for huge weight sums), and does not allocate.

mod backend;
mod cookie;
mod ewma;
mod hash;
mod key;
mod least;
mod maglev;
mod p2c;
mod rng;
mod round_robin;
mod sticky;
mod weighted;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

pub use backend::{Backend, RequestGuard};
pub use cookie::is_valid_cookie_name;
pub use key::HashKey;

use least::LeastRequests;
use maglev::Maglev;
use round_robin::RoundRobin;
use sticky::Sticky;
use weighted::Weighted;

/// How a pool picks a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Each server in turn; weights are ignored.
    RoundRobin,
    /// Smooth weighted round robin (nginx-style): exact proportions, interleaved.
    Weighted,
    /// Fewest requests in flight; ties rotate. Weights are ignored.
    LeastRequests,
    /// Power of two choices, cost = peak-EWMA latency × (in flight + 1).
    /// Weights are ignored.
    P2cEwma,
    /// Maglev consistent hashing on the pool's [`HashKey`]; weights are honoured.
    Hash,
}

impl Algorithm {
    /// Parses a config name: `round_robin`, `weighted`, `least_requests`,
    /// `p2c_ewma` or `hash`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "round_robin" => Self::RoundRobin,
            "weighted" => Self::Weighted,
            "least_requests" => Self::LeastRequests,
            "p2c_ewma" => Self::P2cEwma,
            "hash" => Self::Hash,
            _ => return None,
        })
    }

    /// The config name, as accepted by [`Algorithm::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round_robin",
            Self::Weighted => "weighted",
            Self::LeastRequests => "least_requests",
            Self::P2cEwma => "p2c_ewma",
            Self::Hash => "hash",
        }
    }
}

/// What [`Balancer::pick`] may look at.
#[derive(Debug)]
pub struct PickInput<'a> {
    pub client_ip: IpAddr,
    pub headers: &'a http::HeaderMap,
}

/// The server picked for one request.
#[derive(Debug)]
pub struct Pick<'a> {
    pub server: &'a Arc<Backend>,
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
        }
    }

    /// The pool's servers, in config order.
    pub fn servers(&self) -> &[Arc<Backend>] {
        &self.servers
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Picks a server for one request. None only when there are no servers.
    pub fn pick(&self, input: &PickInput<'_>) -> Option<Pick<'_>> {
        if self.servers.is_empty() {
            return None;
        }
        if let Some(i) = self.sticky.as_ref().and_then(|s| s.lookup(input.headers)) {
            if let Some(server) = self.servers.get(i) {
                return Some(Pick {
                    server,
                    set_cookie: None,
                });
            }
        }
        let i = match &self.strategy {
            Strategy::RoundRobin(rr) => rr.pick(self.servers.len()),
            Strategy::Weighted(w) => w.pick(),
            Strategy::LeastRequests(lr) => lr.pick(&self.servers),
            Strategy::P2cEwma => p2c::pick(&self.servers),
            Strategy::Hash(m) => m.pick(key::key_hash(&self.hash_key, input)),
        };
        let server = self.servers.get(i)?;
        Some(Pick {
            server,
            set_cookie: self.sticky.as_ref().and_then(|s| s.set_cookie(i)),
        })
    }
}
