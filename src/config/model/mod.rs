//! The validated model the code runs, built from [`super::schema`] by
//! the loader. Everything here has been checked: addresses parse, routes
//! name existing pools, pools are not empty, certificates load.
//!
//! It is plain data: std, `http`, `ipnet` and compiled `regex` values,
//! nothing that runs. The runtime modules build their own objects from it
//! (the firewall its CIDR sets, rule counters and rulesets, the balancer
//! its pools, tls its signing keys and server configurations).
//!
//! Exposes [`Model`] and its parts, kept in four files: listeners, routes
//! and origins (`listener.rs`), certificates (`cert.rs`), pools
//! (`pool.rs`), and the firewall's rules, bans and host topology
//! (`firewall.rs`).

mod cert;
mod firewall;
mod listener;
mod pool;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::defaults as d;
pub use cert::{CertProblem, CertSpec, KeyPem, Pem};
pub use firewall::{
    Action, BalancerNeeds, BanPolicy, Condition, Dependency, HeaderTest, Host, KeyPart, Role, Rule, Topology,
};
pub use listener::{
    AcmeSettings, ClientAuth, ClientFilter, DbEndpoint, HostMatch, Hsts, HttpsSettings, Listener,
    ListenerKind, Origin, OriginContent, OriginTls, ProxyVersion, Route,
};
pub use pool::{
    Algorithm, BackendTls, CertSource, CheckKind, CrlFile, HashKey, HealthCheck, Outlier, Password, Pool,
    RetryBudget, Revocation, Server, TlsRoots, UpstreamProtocol,
};

/// A whole validated configuration.
#[derive(Debug, Clone)]
pub struct Model {
    /// The file it came from, if any (for reloads and messages).
    pub source: Option<PathBuf>,
    /// Worker threads (at least 1).
    pub workers: usize,
    pub state_dir: PathBuf,
    pub log: LogSettings,
    pub timeouts: Timeouts,
    pub generate_local_ca: bool,
    pub admin: Admin,
    /// Count requests per listener, route and server.
    pub metrics_enabled: bool,
    pub limits: Limits,
    /// The hosts of the infrastructure, for host firewalls.
    pub topology: Option<Topology>,
    /// Peers whose forwarded client address is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-client connection limits (0 = none).
    pub max_connections_per_client: u32,
    pub new_connections_per_client_per_second: u32,
    /// Automatic bans; None = only bans made through the admin API.
    pub bans: Option<BanPolicy>,
    pub access_log: Option<AccessLog>,
    pub alerts: Alerts,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
    pub routes: Vec<Route>,
    pub origins: Vec<Origin>,
    /// Firewall request rules, in order.
    pub rules: Vec<Rule>,
    /// Shared state with the other instances; None: this instance alone.
    pub cluster: Option<ClusterSettings>,
    /// The other instances' admin APIs, shown with this one as the fleet.
    pub peers: Vec<Peer>,
    /// `[fleet]`: the configuration comes from etcd; None: from this file.
    pub fleet: Option<FleetSettings>,
    pub waf: Option<WafSettings>,
    /// `[audit]`.
    pub audit: Audit,
}

impl Model {
    /// The first listener whose certificates come from an ACME CA.
    pub fn first_acme_listener(&self) -> Option<&str> {
        self.listeners.iter().find_map(|l| match &l.kind {
            ListenerKind::Https(h) if h.acme.is_some() => Some(l.name.as_str()),
            _ => None,
        })
    }

    /// Why this configuration cannot run in its fleet as it is: a fleet
    /// with ACME listeners needs the key that seals what it shares.
    pub fn fleet_problem(&self) -> Option<String> {
        let fleet = self.fleet.as_ref()?;
        let listener = self.first_acme_listener()?;
        fleet.secret_key.is_none().then(|| {
            format!(
                "listener `{listener}` orders certificates from an ACME CA, which a fleet orders once and shares through etcd sealed: set [fleet] secret_key_file (64 hex digits, the same on every instance; `openssl rand -hex 32`)"
            )
        })
    }

    /// Every certificate chain read from files, with what holds it
    /// (`listener \`x\``, `pool \`x\` client_cert`, `origin \`x\``) and
    /// whether it is a server certificate: what `rampart check` and
    /// `rampart audit` inspect.
    pub fn cert_files(&self) -> Vec<(String, &CertSpec, bool)> {
        let mut out = Vec::new();
        for l in &self.listeners {
            if let ListenerKind::Https(s) = &l.kind {
                out.extend(
                    s.certs
                        .iter()
                        .map(|c| (format!("listener `{}`", l.name), c, true)),
                );
            }
        }
        for p in &self.pools {
            if let Some(CertSource::Files(c)) = p.tls.as_ref().and_then(|t| t.client.as_ref()) {
                out.push((format!("pool `{}` client_cert", p.name), c, false));
            }
        }
        for o in &self.origins {
            if let Some(CertSource::Files(c)) = o.tls.as_ref().map(|t| &t.cert) {
                out.push((format!("origin `{}`", o.name), c, true));
            }
        }
        out
    }
}

/// Where the certificate and key ACME obtained for `listener` are kept.
pub fn acme_dir(state_dir: &std::path::Path, listener: &str) -> PathBuf {
    state_dir.join("acme").join(listener)
}

/// The findings of `rampart audit`: identifier (what `[[audit.ack]]`
/// names) and what each is about.
pub const FINDINGS: &[(&str, &str)] = &[
    (
        "lb-single",
        "a single load balancer (no second one, or no floating address)",
    ),
    (
        "db-single-writer",
        "a single writable database (no replica, or no writer endpoint)",
    ),
    (
        "db-reachable-from-lb",
        "the database port reachable from the balancer tier",
    ),
    (
        "backend-plaintext",
        "plaintext between the balancer and its servers",
    ),
    ("tiers-colocated", "tiers carried by one host"),
    ("tier-no-spare", "a tier with no spare host"),
    (
        "admin-exposed",
        "the admin API or ssh reachable beyond the admin network",
    ),
    ("host-unmonitored", "a host no monitor scrapes"),
    ("cert-expiring", "a certificate expiring soon"),
    ("tls-weak", "TLS weaker than Mozilla's intermediate profile"),
    ("rule-unreachable", "a firewall rule that can never match"),
    ("firewall-not-applied", "a host firewall never applied"),
    ("firewall-drift", "a host firewall that differs from the config"),
    ("egress-open", "a host whose outgoing traffic is not restricted"),
    (
        "egress-blocked",
        "the balancers' firewalls refuse what the config connects to",
    ),
    ("limits-per-instance", "rate limits counted per balancer"),
    (
        "fleet-node-refused",
        "a node of the fleet refused the current revision",
    ),
    (
        "fleet-node-behind",
        "a node of the fleet serves an older revision",
    ),
    ("fleet-etcd-single", "the fleet's etcd has one member"),
];

/// `[audit]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub cert_warning: std::time::Duration,
    pub acks: Vec<Ack>,
}

/// A finding accepted on purpose, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub id: String,
    /// None: every finding with this id.
    pub subject: Option<String>,
    pub reason: String,
}

/// Another instance's admin API.
#[derive(Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub addr: std::net::SocketAddr,
    pub token: Option<String>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `[waf]`, validated: the rules loaded.
#[derive(Debug, Clone)]
pub struct WafSettings {
    pub rules: std::sync::Arc<crate::waf::RuleSet>,
    pub paranoia: u8,
    /// Deny what the rules deny; false: log it only (`mode = "detect"`).
    pub block: bool,
    /// How much of a request body the rules read.
    pub body_limit: usize,
    /// A body longer than `body_limit` is refused (413); false: its first
    /// `body_limit` bytes are inspected and the whole is forwarded.
    pub reject_over_limit: bool,
    /// Exclusions for every route.
    pub exclude: crate::waf::Exclusions,
}

/// A route's own WAF mode (`[[route]] waf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteWaf {
    Off,
    Detect,
    Block,
}

/// `[fleet]`, validated: files read.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSettings {
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub node: String,
    /// User and password.
    pub credentials: Option<(String, String)>,
    /// The CA (PEM) that signs etcd's certificate, for `https://`.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and key (PEM).
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    pub timeout: Duration,
    /// The key that seals what the fleet keeps secret in etcd (ACME
    /// certificates and account keys), from `secret_key_file`.
    pub secret_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for FleetSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSettings")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("tls", &self.ca_pem.is_some())
            .field("timeout", &self.timeout)
            .field("secret_key", &self.secret_key.map(|_| "<redacted>"))
            .finish()
    }
}

/// `[cluster]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// The Redis URL (it may hold a password: never logged whole).
    pub redis: String,
    /// What logs and the API show of it: the URL without its password.
    pub redis_shown: String,
    /// The server's host (a name or an address) and port, from the URL.
    pub host: String,
    pub port: u16,
    pub timeout: Duration,
}

/// Request size and speed limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_uri_length: usize,
    /// None = no limit (routes may set their own).
    pub max_body: Option<u64>,
    /// Bytes per second; 0 = off.
    pub min_body_rate: u64,
    pub body_grace: Duration,
    pub http2_max_concurrent_streams: u32,
    pub http2_max_pending_resets: usize,
    /// New QUIC handshakes per second and listener before Retry.
    pub quic_retry_above: u32,
    pub quic_retry_always: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: d::MAX_HEADER_BYTES,
            max_headers: d::MAX_HEADERS,
            max_uri_length: d::MAX_URI_LENGTH,
            max_body: None,
            min_body_rate: d::MIN_BODY_RATE,
            body_grace: d::BODY_GRACE,
            http2_max_concurrent_streams: d::HTTP2_MAX_CONCURRENT_STREAMS,
            http2_max_pending_resets: d::HTTP2_MAX_PENDING_RESETS,
            quic_retry_above: d::QUIC_RETRY_ABOVE,
            quic_retry_always: false,
        }
    }
}

/// Where and how requests are logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    pub json: bool,
    /// None = stdout.
    pub path: Option<PathBuf>,
    pub buffer: usize,
}

/// Alert rules and where notifications go.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    pub webhook: Option<http::Uri>,
    /// For an `https://` webhook: whom its certificate must chain to.
    pub webhook_roots: TlsRoots,
    pub webhook_timeout: Duration,
    pub webhook_retries: u32,
    pub interval: Duration,
    pub rules: Vec<AlertRule>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            webhook: None,
            webhook_roots: TlsRoots::System,
            webhook_timeout: d::WEBHOOK_TIMEOUT,
            webhook_retries: d::WEBHOOK_RETRIES,
            interval: d::ALERT_INTERVAL,
            rules: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub name: String,
    pub kind: AlertKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertKind {
    /// Requests per second over a window (of a pool, or of everything).
    QpsAbove {
        pool: Option<String>,
        window: &'static str,
        threshold: f64,
    },
    QpsBelow {
        pool: Option<String>,
        window: &'static str,
        threshold: f64,
    },
    /// Share of 5xx answers over the last 10 s.
    ErrorRatioAbove { pool: Option<String>, threshold: f64 },
    /// p99 latency over the last 10 s, in milliseconds.
    P99Above { pool: Option<String>, threshold: f64 },
    /// A server (or any server of the pool) down or ejected.
    ServerDown { pool: String, server: Option<String> },
    /// No server of the pool can take a request.
    PoolDown { pool: String },
    /// A served certificate expires within `days`.
    CertExpiring { listener: Option<String>, days: u32 },
    /// A writer endpoint (`listener`, or any) refuses connections: no
    /// server, or more than one, is writable.
    WriterUnavailable { listener: Option<String> },
}

/// The admin API listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// None = disabled.
    pub addr: Option<SocketAddr>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    pub level: Option<String>,
    /// `Some(true)` JSON, `Some(false)` text, `None` decide by terminal.
    pub json: Option<bool>,
}

/// Timeouts applied by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect to a backend.
    pub connect: Duration,
    /// From the request sent to the backend's response header.
    pub response_header: Duration,
    /// A client connection waiting for (the whole header of) its next
    /// request, and a TLS handshake.
    pub client_idle: Duration,
    /// From the first byte of a request to the end of its head; past it, 408.
    pub request_header: Duration,
    /// A pooled backend connection unused for this long is closed.
    pub backend_idle: Duration,
    /// A TCP-mode session idle both ways for this long is closed.
    pub tcp_idle: Duration,
    /// Whole request: from arrival to the end of the response header, the
    /// time the client takes to send its body aside.
    pub request: Duration,
    /// The longest wait for the next piece of a request body; past it, 408.
    pub request_body_idle: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
    /// On shutdown, how long rampart keeps accepting after it stopped
    /// answering ready (so that a floating address can move first).
    pub shutdown_delay: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: d::CONNECT,
            response_header: d::RESPONSE_HEADER,
            client_idle: d::CLIENT_IDLE,
            request_header: d::REQUEST_HEADER,
            backend_idle: d::BACKEND_IDLE,
            tcp_idle: d::TCP_IDLE,
            request: d::REQUEST,
            request_body_idle: d::REQUEST_BODY_IDLE,
            drain: d::DRAIN,
            shutdown_delay: d::SHUTDOWN_DELAY,
        }
    }
}
