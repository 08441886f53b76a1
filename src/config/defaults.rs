//! Every default of the configuration, in one place: what a key is when
//! the file leaves it out. The model's `Default` impls and the validation
//! use these constants; [`DOCUMENTED`] pairs each key of
//! `docs/config.md` with the default as the docs write it (a test holds the
//! docs, the table and the constants to the same values).
//!
//! A default that users could also write as a name (`"round_robin"`,
//! `"http"`) is kept as that name, and validation reads it like a name
//! the user wrote, so the two cannot mean different things.

use std::time::Duration;

use http::StatusCode;

// [runtime]
pub const STATE_DIR: &str = ".rampart";

// [log]
pub const LOG_LEVEL: &str = "info";
pub const LOG_FORMAT: &str = "auto";

// [timeouts]
pub const CONNECT: Duration = Duration::from_secs(3);
pub const RESPONSE_HEADER: Duration = Duration::from_secs(30);
pub const CLIENT_IDLE: Duration = Duration::from_secs(60);
pub const REQUEST_HEADER: Duration = Duration::from_secs(10);
pub const BACKEND_IDLE: Duration = Duration::from_secs(55);
pub const TCP_IDLE: Duration = Duration::from_secs(3600);
pub const REQUEST: Duration = Duration::from_secs(60);
pub const REQUEST_BODY_IDLE: Duration = Duration::from_secs(60);
pub const DRAIN: Duration = Duration::from_secs(30);
pub const SHUTDOWN_DELAY: Duration = Duration::ZERO;
pub const CLUSTER_TIMEOUT: Duration = Duration::from_millis(100);
pub const FLEET_PREFIX: &str = "/rampart";
pub const FLEET_TIMEOUT: Duration = Duration::from_secs(2);

// [tls]
pub const GENERATE_LOCAL_CA: bool = true;

// [admin]
pub const ADMIN_ENABLED: bool = true;
pub const ADMIN_ADDRESS: &str = "127.0.0.1:9900";

// [limits]
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const MAX_URI_LENGTH: usize = 8192;
/// Bytes per second.
pub const MIN_BODY_RATE: u64 = 1024;
pub const BODY_GRACE: Duration = Duration::from_secs(10);
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 256;
pub const HTTP2_MAX_PENDING_RESETS: usize = 20;
/// New QUIC handshakes per second and listener above which clients must
/// prove their address with a Retry first.
pub const QUIC_RETRY_ABOVE: u32 = 200;

// [firewall] (0 = no limit)
pub const MAX_CONNECTIONS_PER_CLIENT: u32 = 0;
pub const NEW_CONNECTIONS_PER_CLIENT_PER_SECOND: u32 = 0;

// [topology]
pub const SSH_PORT: u16 = 22;
pub const ADMIN_PORT: u16 = 9900;
pub const METRICS_PORT: u16 = 9100;
pub const DB_PORT: u16 = 3306;
/// `rampart audit` reports certificates expiring within this.
pub const AUDIT_CERT_WARNING: Duration = Duration::from_secs(30 * 86_400);
/// The service port of a `web` host that lists no `ports`.
pub const WEB_PORT: u16 = 80;
/// The service port of an `app` host that lists no `ports`.
pub const APP_PORT: u16 = 8080;
/// etcd's client and peer ports (hosts with the `etcd` role).
/// `[waf] paranoia`.
pub const WAF_PARANOIA: u8 = 1;
/// How much of a request body the WAF reads.
pub const WAF_BODY_LIMIT: u64 = 1024 * 1024;
pub const ETCD_CLIENT_PORT: u16 = 2379;
pub const ETCD_PEER_PORT: u16 = 2380;

// [bans]
pub const BAN_WINDOW: Duration = Duration::from_secs(60);
pub const BAN_DURATION: Duration = Duration::from_secs(600);

// [metrics]
pub const METRICS_ENABLED: bool = true;

// [access_log]
pub const ACCESS_LOG_ENABLED: bool = false;
pub const ACCESS_LOG_FORMAT: &str = "json";
pub const ACCESS_LOG_PATH: &str = "stdout";
/// Lines.
pub const ACCESS_LOG_BUFFER: usize = 8192;

// [alerts] and [[alert]]
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(2);
pub const WEBHOOK_RETRIES: u32 = 3;
pub const ALERT_INTERVAL: Duration = Duration::from_secs(1);
pub const ALERT_WINDOW: &str = "10s";

// [[listener]]
pub const LISTENER_PROTOCOL: &str = "http";
pub const HTTP2: bool = true;
pub const PROXY_PROTOCOL: bool = false;
pub const MAX_LAG: Duration = Duration::from_secs(10);
pub const FALLBACK_TO_PRIMARY: bool = false;

// [[pool]] (0 = no limit)
pub const ALGORITHM: &str = "round_robin";
pub const HASH_KEY: &str = "client_ip";
pub const POOL_PROTOCOL: &str = "http1";
pub const MAX_IDLE_PER_SERVER: usize = 256;
pub const POOL_MAX_REQUESTS: u32 = 0;
/// Zero: off.
pub const SLOW_START: Duration = Duration::ZERO;
pub const RETRIES: u32 = 2;
pub const RETRY_BUDGET_RATIO: f64 = 0.2;
pub const RETRY_BUDGET_MIN_PER_SECOND: u32 = 10;

// [pool.health_check]
pub const CHECK_TYPE: &str = "http";
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
pub const CHECK_JITTER: Duration = Duration::ZERO;
pub const CHECK_RISE: u32 = 2;
pub const CHECK_FALL: u32 = 3;
pub const CHECK_METHOD: &str = "GET";
pub const CHECK_PATH: &str = "/";
pub const CHECK_EXPECT_STATUS: &[&str] = &["200-399"];
pub const TRAFFIC_WHEN_UNKNOWN: bool = false;

// [pool.outlier]
pub const CONSECUTIVE_FAILURES: u32 = 5;
pub const BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
pub const MAX_EJECTED_PERCENT: u32 = 50;
pub const ON_5XX: bool = false;

// [[pool.server]] (0 = no limit)
pub const SERVER_WEIGHT: u32 = 1;
pub const SERVER_MAX_REQUESTS: u32 = 0;

// [[route]]
pub const ROUTE_PATH: &str = "/";
pub const UPGRADES: &[&str] = &["websocket"];

// [[rule]]
pub const DENY_STATUS: StatusCode = StatusCode::FORBIDDEN;
pub const TARPIT_DELAY: Duration = Duration::from_secs(2);
pub const RATE_KEY: &[&str] = &["ip"];

/// What a default is, for holding the docs to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Duration(Duration),
    /// Bytes, written as a size (`"64KiB"`).
    Size(u64),
    Count(u64),
    Share(f64),
    Flag(bool),
    /// A string users could write themselves.
    Text(&'static str),
    List(&'static [&'static str]),
    /// Described in words: no value is set (`none`, `no limit`, `all`), or
    /// it depends on something else (`one per CPU core`).
    Words,
}

/// A key's default as `docs/config.md` states it.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    /// The table (`pool.health_check`) and the key, as the docs head and
    /// list them.
    pub key: &'static str,
    /// The `default` cell, exactly as written (code spans included).
    pub doc: &'static str,
    pub value: Value,
}

const fn d(key: &'static str, doc: &'static str, value: Value) -> Documented {
    Documented { key, doc, value }
}

use Value::{Count, Flag, List, Share, Size, Text, Words};

/// Every key with a default in `docs/config.md`, with that default.
pub const DOCUMENTED: &[Documented] = &[
    d("runtime.workers", "one per CPU core", Words),
    d("runtime.state_dir", "`\".rampart\"`", Text(STATE_DIR)),
    d("log.level", "`\"info\"`", Text(LOG_LEVEL)),
    d("log.format", "`\"auto\"`", Text(LOG_FORMAT)),
    d("timeouts.connect", "`\"3s\"`", Value::Duration(CONNECT)),
    d(
        "timeouts.response_header",
        "`\"30s\"`",
        Value::Duration(RESPONSE_HEADER),
    ),
    d("timeouts.client_idle", "`\"60s\"`", Value::Duration(CLIENT_IDLE)),
    d(
        "timeouts.request_header",
        "`\"10s\"`",
        Value::Duration(REQUEST_HEADER),
    ),
    d(
        "timeouts.backend_idle",
        "`\"55s\"`",
        Value::Duration(BACKEND_IDLE),
    ),
    d("timeouts.tcp_idle", "`\"1h\"`", Value::Duration(TCP_IDLE)),
    d("timeouts.request", "`\"60s\"`", Value::Duration(REQUEST)),
    d(
        "timeouts.request_body_idle",
        "`\"60s\"`",
        Value::Duration(REQUEST_BODY_IDLE),
    ),
    d("timeouts.drain", "`\"30s\"`", Value::Duration(DRAIN)),
    d(
        "timeouts.shutdown_delay",
        "`\"0s\"`",
        Value::Duration(SHUTDOWN_DELAY),
    ),
    d("cluster.redis", "none", Words),
    d("cluster.peers", "none", Words),
    d("cluster.timeout", "`\"100ms\"`", Value::Duration(CLUSTER_TIMEOUT)),
    d("fleet.prefix", "`\"/rampart\"`", Text(FLEET_PREFIX)),
    d("fleet.node", "the host name", Words),
    d("fleet.username", "none", Words),
    d("fleet.password", "none", Words),
    d("fleet.password_file", "none", Words),
    d("fleet.ca", "none", Words),
    d("fleet.cert", "none", Words),
    d("fleet.key", "none", Words),
    d("fleet.timeout", "`\"2s\"`", Value::Duration(FLEET_TIMEOUT)),
    d("fleet.secret_key_file", "none", Words),
    d("waf.paranoia", "`1`", Count(WAF_PARANOIA as u64)),
    d("waf.mode", "`\"block\"`", Text("block")),
    d("waf.body_limit", "`\"1MiB\"`", Size(WAF_BODY_LIMIT)),
    d("waf.body_limit_action", "`\"reject\"`", Text("reject")),
    d("waf.exclude", "none", Words),
    d("rule.scope", "`\"local\"`", Text("local")),
    d("tls.generate_local_ca", "`true`", Flag(GENERATE_LOCAL_CA)),
    d("admin.enabled", "`true`", Flag(ADMIN_ENABLED)),
    d("admin.address", "`\"127.0.0.1:9900\"`", Text(ADMIN_ADDRESS)),
    d("admin.token", "none", Words),
    d("admin.token_file", "none", Words),
    d(
        "limits.max_header_bytes",
        "`\"64KiB\"`",
        Size(MAX_HEADER_BYTES as u64),
    ),
    d("limits.max_headers", "`100`", Count(MAX_HEADERS as u64)),
    d("limits.max_uri_length", "`8192`", Count(MAX_URI_LENGTH as u64)),
    d("limits.max_body", "no limit", Words),
    d("limits.min_body_rate", "`\"1KiB\"`", Size(MIN_BODY_RATE)),
    d("limits.body_grace", "`\"10s\"`", Value::Duration(BODY_GRACE)),
    d(
        "limits.http2_max_concurrent_streams",
        "`256`",
        Count(HTTP2_MAX_CONCURRENT_STREAMS as u64),
    ),
    d(
        "limits.http2_max_pending_resets",
        "`20`",
        Count(HTTP2_MAX_PENDING_RESETS as u64),
    ),
    d("limits.quic_retry_above", "`200`", Count(QUIC_RETRY_ABOVE as u64)),
    d("limits.quic_retry_always", "`false`", Value::Flag(false)),
    d("firewall.max_connections_per_client", "no limit", Words),
    d(
        "firewall.new_connections_per_client_per_second",
        "no limit",
        Words,
    ),
    d("firewall.trusted_proxies", "none", Words),
    d("topology.ssh_port", "`22`", Count(SSH_PORT as u64)),
    d("topology.admin_port", "`9900`", Count(ADMIN_PORT as u64)),
    d("topology.metrics_port", "`9100`", Count(METRICS_PORT as u64)),
    d("topology.db_port", "`3306`", Count(DB_PORT as u64)),
    d("topology.dns", "none", Words),
    d("topology.ntp", "none", Words),
    d("topology.mirrors", "none", Words),
    d("topology.floating_addresses", "none", Words),
    d("topology.host.ports", "`80` for web, `8080` for app", Words),
    d("topology.host.extra", "none", Words),
    d("topology.host.extra_out", "none", Words),
    d("topology.host.egress_to", "none", Words),
    d("topology.host.egress_open", "`false`", Flag(false)),
    d(
        "audit.cert_warning",
        "`\"30d\"`",
        Value::Duration(AUDIT_CERT_WARNING),
    ),
    d("audit.ack.subject", "every subject", Words),
    d("bans.after", "none (no automatic bans)", Words),
    d("bans.window", "`\"60s\"`", Value::Duration(BAN_WINDOW)),
    d("bans.duration", "`\"10m\"`", Value::Duration(BAN_DURATION)),
    d("metrics.enabled", "`true`", Flag(METRICS_ENABLED)),
    d("access_log.enabled", "`false`", Flag(ACCESS_LOG_ENABLED)),
    d("access_log.format", "`\"json\"`", Text(ACCESS_LOG_FORMAT)),
    d("access_log.path", "`\"stdout\"`", Text(ACCESS_LOG_PATH)),
    d("access_log.buffer", "`8192`", Count(ACCESS_LOG_BUFFER as u64)),
    d("alerts.webhook", "none", Words),
    d(
        "alerts.webhook_timeout",
        "`\"2s\"`",
        Value::Duration(WEBHOOK_TIMEOUT),
    ),
    d("alerts.webhook_retries", "`3`", Count(WEBHOOK_RETRIES as u64)),
    d("alerts.webhook_ca", "`\"system\"`", Text("system")),
    d("alerts.interval", "`\"1s\"`", Value::Duration(ALERT_INTERVAL)),
    d("listener.protocol", "`\"http\"`", Text(LISTENER_PROTOCOL)),
    d("listener.redirect_to", "none", Words),
    d("listener.http2", "`true`", Flag(HTTP2)),
    d("listener.http3", "`false`", Flag(false)),
    d("listener.client_auth", "not asked", Words),
    d("listener.mode", "http", Words),
    d("listener.pool", "none", Words),
    d("listener.role", "none", Words),
    d("listener.send_proxy", "none", Words),
    d("listener.client_ca", "none", Words),
    d("listener.client_crl", "none", Words),
    d("listener.crl_expired", "`\"fail_closed\"`", Text("fail_closed")),
    d("listener.acme", "none", Words),
    d("listener.hsts_max_age", "none", Words),
    // serde's default for the plain `bool` in schema.rs.
    d("listener.hsts_include_subdomains", "`false`", Flag(false)),
    d("listener.proxy_protocol", "`false`", Flag(PROXY_PROTOCOL)),
    d("listener.max_lag", "`\"10s\"`", Value::Duration(MAX_LAG)),
    d(
        "listener.fallback_to_primary",
        "`false`",
        Flag(FALLBACK_TO_PRIMARY),
    ),
    d("listener.allow", "none", Words),
    d("listener.deny", "none", Words),
    d("listener.allow_file", "none", Words),
    d("listener.deny_file", "none", Words),
    d(
        "listener.certificate.names",
        "the names in the certificate",
        Words,
    ),
    d("pool.algorithm", "`\"round_robin\"`", Text(ALGORITHM)),
    d("pool.hash_key", "`\"client_ip\"`", Text(HASH_KEY)),
    d("pool.sticky_cookie", "none", Words),
    d("pool.protocol", "`\"http1\"`", Text(POOL_PROTOCOL)),
    d(
        "pool.max_idle_per_server",
        "`256`",
        Count(MAX_IDLE_PER_SERVER as u64),
    ),
    d("pool.max_requests", "no limit", Words),
    d("pool.slow_start", "off", Words),
    d("pool.per_try_timeout", "off", Words),
    d("pool.retries", "`2`", Count(RETRIES as u64)),
    d("pool.retry_budget_ratio", "`0.2`", Share(RETRY_BUDGET_RATIO)),
    d(
        "pool.retry_budget_min_per_second",
        "`10`",
        Count(RETRY_BUDGET_MIN_PER_SECOND as u64),
    ),
    d("pool.health_check.type", "`\"http\"`", Text(CHECK_TYPE)),
    d(
        "pool.health_check.interval",
        "`\"2s\"`",
        Value::Duration(CHECK_INTERVAL),
    ),
    d(
        "pool.health_check.timeout",
        "`\"1s\"`",
        Value::Duration(CHECK_TIMEOUT),
    ),
    d(
        "pool.health_check.jitter",
        "`\"0s\"`",
        Value::Duration(CHECK_JITTER),
    ),
    d("pool.health_check.rise", "`2`", Count(CHECK_RISE as u64)),
    d("pool.health_check.fall", "`3`", Count(CHECK_FALL as u64)),
    d("pool.health_check.method", "`\"GET\"`", Text(CHECK_METHOD)),
    d("pool.health_check.path", "`\"/\"`", Text(CHECK_PATH)),
    d("pool.health_check.host", "the server's address", Words),
    d(
        "pool.health_check.expect_status",
        "`[\"200-399\"]`",
        List(CHECK_EXPECT_STATUS),
    ),
    d("pool.health_check.body_contains", "none", Words),
    d("pool.health_check.user", "none", Words),
    d("pool.health_check.password", "empty", Words),
    d("pool.health_check.password_file", "none", Words),
    d(
        "pool.health_check.traffic_when_unknown",
        "`false`",
        Flag(TRAFFIC_WHEN_UNKNOWN),
    ),
    d(
        "pool.outlier.consecutive_failures",
        "`5`",
        Count(CONSECUTIVE_FAILURES as u64),
    ),
    d(
        "pool.outlier.base_ejection_time",
        "`\"30s\"`",
        Value::Duration(BASE_EJECTION_TIME),
    ),
    d(
        "pool.outlier.max_ejected_percent",
        "`50`",
        Count(MAX_EJECTED_PERCENT as u64),
    ),
    d("pool.outlier.on_5xx", "`false`", Flag(ON_5XX)),
    d("pool.server.name", "the origin's name, else the address", Words),
    d("pool.server.weight", "`1`", Count(SERVER_WEIGHT as u64)),
    d("pool.server.max_requests", "no limit", Words),
    d(
        "pool.server.tls_name",
        "the pool's `server_name`, else the address's host",
        Words,
    ),
    d("pool.tls.ca", "the host's trust store", Words),
    d("pool.tls.server_name", "each server's host", Words),
    d("pool.tls.client_cert", "none", Words),
    d("pool.tls.client_key", "none", Words),
    d("pool.tls.pin_sha256", "none", Words),
    d("pool.tls.crl", "none", Words),
    d("pool.tls.crl_expired", "`\"fail_closed\"`", Text("fail_closed")),
    d("route.host", "any", Words),
    d("route.path", "`\"/\"`", Text(ROUTE_PATH)),
    d("route.listeners", "all", Words),
    d("route.max_body", "`[limits] max_body`", Words),
    d("route.upgrades", "`[\"websocket\"]`", List(UPGRADES)),
    d("route.waf", "`[waf] mode`", Words),
    d("route.waf_exclude", "none", Words),
    d("rule.status", "`403`", Count(DENY_STATUS.as_u16() as u64)),
    d(
        "rule.body",
        "the status and its reason, e.g. `403 Forbidden`",
        Words,
    ),
    d("rule.delay", "`\"2s\"`", Value::Duration(TARPIT_DELAY)),
    d("rule.listeners", "all", Words),
    d("rule.burst", "`rate`", Words),
    d("rule.key", "`[\"ip\"]`", List(RATE_KEY)),
    // serde's default for the plain `bool` in schema.rs.
    d("origin.demo", "`false`", Flag(false)),
    d("origin.tls.key", "none", Words),
    d("origin.tls.client_ca", "none", Words),
];
