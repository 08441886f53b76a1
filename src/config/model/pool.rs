//! Pools of the validated model: their servers, how a server is picked
//! ([`Algorithm`], [`HashKey`]), retries, active and passive checks.

use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

use crate::config::defaults as d;
use crate::config::syntax::is_valid_cookie_name;

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

/// The request property that [`Algorithm::Hash`] hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// The client's IP address.
    ClientIp,
    /// A request header's (first) value; the client IP when missing or empty.
    Header(HeaderName),
    /// A cookie's value; the client IP when missing or empty.
    Cookie(String),
}

impl HashKey {
    /// Parses `client_ip`, `header:NAME` (a valid header name) or
    /// `cookie:NAME` (a valid cookie name, see [`is_valid_cookie_name`]).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "client_ip" {
            Some(Self::ClientIp)
        } else if let Some(name) = s.strip_prefix("header:") {
            HeaderName::from_bytes(name.as_bytes()).ok().map(Self::Header)
        } else if let Some(name) = s.strip_prefix("cookie:") {
            is_valid_cookie_name(name).then(|| Self::Cookie(name.to_owned()))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 over cleartext.
    H2c,
    /// HTTP/2 over TLS (ALPN `h2`).
    H2,
}

/// `[pool.tls]`, validated: files read, names and pins checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTls {
    pub roots: TlsRoots,
    pub client: Option<CertSource>,
    /// SHA-256 of accepted SubjectPublicKeyInfos; empty = no pinning.
    pub pins: Vec<[u8; 32]>,
    /// Revocation lists of `roots` (`crl`).
    pub revocation: Option<Revocation>,
}

/// Certificate revocation lists checked for the certificates a CA signed,
/// and what one past its `nextUpdate` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub files: Vec<CrlFile>,
    /// An expired list refuses every certificate (`fail_closed`); else it
    /// is still used (`fail_open`).
    pub enforce_expiry: bool,
}

/// One revocation list file, read and parsed at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    pub path: std::path::PathBuf,
    /// Its lists, DER.
    pub ders: Vec<Vec<u8>>,
    /// When the earliest of them should have been replaced (Unix seconds).
    pub next_update: Option<i64>,
}

/// Who signs backend certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRoots {
    /// The host's trust store.
    System,
    /// rampart's own CA (in the state directory).
    Internal,
    /// A PEM file of CA certificates.
    File {
        path: std::path::PathBuf,
        pem: super::Pem,
    },
}

/// A certificate rampart shows (to backends that ask for one, or as a
/// built-in origin's server certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Issued and renewed by rampart's own CA.
    Internal,
    /// A chain and key from files (checked against each other at load).
    Files(super::CertSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub algorithm: Algorithm,
    pub hash_key: HashKey,
    pub sticky_cookie: Option<String>,
    pub protocol: UpstreamProtocol,
    pub max_idle_per_server: usize,
    /// 0 = no limit.
    pub max_requests: u32,
    pub slow_start: Duration,
    pub retries: u32,
    /// A try of a replayable request with no response head within this
    /// counts as failed and the request goes to another server; None: off.
    pub per_try_timeout: Option<Duration>,
    pub retry_budget: RetryBudget,
    pub health_check: Option<HealthCheck>,
    pub outlier: Outlier,
    /// TLS to the servers; None = plaintext.
    pub tls: Option<BackendTls>,
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    pub ratio: f64,
    pub min_per_second: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http {
        method: http::Method,
        path: String,
        host: Option<String>,
        expect: Vec<(u16, u16)>,
        body_contains: Option<String>,
    },
    /// Connects as `user` and classifies the server as primary, replica or
    /// down (`read_only`, replication threads, lag).
    Mysql {
        user: String,
        password: Password,
    },
}

/// A password, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub jitter: Duration,
    pub rise: u32,
    pub fall: u32,
    pub traffic_when_unknown: bool,
}

impl HealthCheck {
    /// The check in words, as an operator reads it: `HTTP GET /health
    /// every 2s, timeout 1s, up after 2 passes, down after 3 fails`.
    pub fn words(&self) -> String {
        let what = match &self.kind {
            CheckKind::Tcp => "TCP connect".to_string(),
            CheckKind::Http { method, path, .. } => format!("HTTP {method} {path}"),
            CheckKind::Mysql { user, .. } => format!("MySQL role as {user}"),
        };
        let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{what} every {}, timeout {}, up after {}, down after {}",
            crate::units::words_duration(self.interval),
            crate::units::words_duration(self.timeout),
            plural(self.rise, "pass", "passes"),
            plural(self.fall, "failure", "failures"),
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlier {
    /// 0 = passive ejection off.
    pub consecutive_failures: u32,
    pub base_ejection_time: Duration,
    pub max_ejected_percent: u32,
    pub on_5xx: bool,
}

impl Default for Outlier {
    fn default() -> Self {
        Outlier {
            consecutive_failures: d::CONSECUTIVE_FAILURES,
            base_ejection_time: d::BASE_EJECTION_TIME,
            max_ejected_percent: d::MAX_EJECTED_PERCENT,
            on_5xx: d::ON_5XX,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// Set when the server is a built-in origin of this config: its bound
    /// address replaces `addr` (they differ when the origin binds port 0).
    pub origin: Option<String>,
    pub weight: u32,
    /// 0 = no limit.
    pub max_requests: u32,
    /// With TLS: the name checked in its certificate and sent as SNI.
    pub tls_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_parse_round_trips() {
        for a in [
            Algorithm::RoundRobin,
            Algorithm::Weighted,
            Algorithm::LeastRequests,
            Algorithm::P2cEwma,
            Algorithm::Hash,
        ] {
            assert_eq!(Algorithm::parse(a.as_str()), Some(a));
        }
        assert_eq!(Algorithm::parse("p2c_ewma"), Some(Algorithm::P2cEwma));
        assert_eq!(Algorithm::parse("RoundRobin"), None);
        assert_eq!(Algorithm::parse(""), None);
    }

    #[test]
    fn hash_key_parse() {
        assert_eq!(HashKey::parse("client_ip"), Some(HashKey::ClientIp));
        assert_eq!(
            HashKey::parse("header:X-User"),
            Some(HashKey::Header(HeaderName::from_static("x-user")))
        );
        assert_eq!(
            HashKey::parse("cookie:session"),
            Some(HashKey::Cookie("session".to_owned()))
        );
        for bad in [
            "header:",
            "cookie:",
            "header:bad name",
            "cookie:a;b",
            "cookie:a b",
            "ip",
            "Client_ip",
        ] {
            assert_eq!(HashKey::parse(bad), None, "{bad}");
        }
    }
}
