//! The validated model the code runs, built from [`super::schema`] by
//! [`super::load`]. Everything here has been checked: addresses parse,
//! routes name existing pools, pools are not empty, certificates load.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::balancer::{Algorithm, HashKey};
use crate::tls::LoadedCert;

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
    pub topology: Option<crate::firewall::nft::Topology>,
    /// Peers whose forwarded client address is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Per-client connection limits (0 = none).
    pub max_connections_per_client: u32,
    pub new_connections_per_client_per_second: u32,
    /// Automatic bans; None = only bans made through the admin API.
    pub bans: Option<crate::firewall::bans::BanPolicy>,
    pub access_log: Option<AccessLog>,
    pub alerts: Alerts,
    pub listeners: Vec<Listener>,
    pub pools: Vec<Pool>,
    pub routes: Vec<Route>,
    pub origins: Vec<Origin>,
    /// Firewall request rules, in order.
    pub rules: Vec<crate::firewall::rules::Rule>,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_uri_length: 8192,
            max_body: None,
            min_body_rate: 1024,
            body_grace: Duration::from_secs(10),
            http2_max_concurrent_streams: 256,
            http2_max_pending_resets: 20,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts {
    pub webhook: Option<http::Uri>,
    pub webhook_timeout: Duration,
    pub webhook_retries: u32,
    pub interval: Duration,
    pub rules: Vec<AlertRule>,
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
}

/// The admin API listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// None = disabled.
    pub addr: Option<SocketAddr>,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    pub level: Option<String>,
    /// `Some(true)` JSON, `Some(false)` text, `None` decide by terminal.
    pub json: Option<bool>,
}

/// Timeouts applied by the proxy. Defaults are documented in `docs/config.md`.
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
    /// Whole request: from arrival to the end of the response header.
    pub request: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(3),
            response_header: Duration::from_secs(30),
            client_idle: Duration::from_secs(60),
            request_header: Duration::from_secs(10),
            backend_idle: Duration::from_secs(55),
            request: Duration::from_secs(60),
            drain: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub name: String,
    pub addr: SocketAddr,
    pub kind: ListenerKind,
    /// Who may connect; checked at accept.
    pub clients: crate::firewall::cidr::CidrSet,
    /// Connections start with a PROXY protocol header (from trusted proxies only).
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone)]
pub enum ListenerKind {
    /// Plain HTTP/1.1; with `redirect_to`, every request gets a 308 to that
    /// HTTPS listener's port.
    Http {
        redirect_to: Option<String>,
    },
    Https(HttpsSettings),
}

#[derive(Debug, Clone)]
pub struct HttpsSettings {
    /// Certificates by SNI; the first is the default. Empty = use the
    /// generated local certificate.
    pub certs: Vec<Arc<LoadedCert>>,
    /// The `Strict-Transport-Security` value to send, if any.
    pub hsts: Option<HeaderValue>,
    pub http2: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    H2c,
}

#[derive(Debug, Clone)]
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
    pub retry_budget: RetryBudget,
    pub health_check: Option<HealthCheck>,
    pub outlier: Outlier,
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
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejected_percent: 50,
            on_5xx: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    /// Set when the server is a built-in origin of this config: its bound
    /// address replaces `addr` (they differ when the origin binds port 0).
    pub origin: Option<String>,
    pub weight: u32,
    /// 0 = no limit.
    pub max_requests: u32,
}

/// How a route matches the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    /// Lower-case exact host, port removed.
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Listener names; `None` = every listener.
    pub listeners: Option<Vec<String>>,
    pub host: HostMatch,
    pub path_prefix: String,
    /// Index into [`Model::pools`].
    pub pool: usize,
    /// Largest request body (overrides the global limit).
    pub max_body: Option<u64>,
    /// Upgrade protocols forwarded (lower-case names, without version).
    pub upgrades: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    pub content: OriginContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginContent {
    Dir(PathBuf),
    Demo,
}
