//! What users write: the serde structs behind `rampart.toml`.
//!
//! Every struct denies unknown fields, so a misspelt key is an error that
//! names its line. Fields that later validation may complain about are
//! wrapped in [`Spanned`] so that the complaint can name their line too.
//! Nothing here is used at run time: [`super::model`] is.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub runtime: Runtime,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub metrics: MetricsCfg,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub bans: Bans,
    #[serde(default)]
    pub firewall: Firewall,
    pub topology: Option<Topology>,
    #[serde(default)]
    pub access_log: AccessLog,
    #[serde(default)]
    pub alerts: Alerts,
    #[serde(default, rename = "alert")]
    pub alert_rules: Vec<AlertRule>,
    #[serde(default, rename = "listener")]
    pub listeners: Vec<Listener>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<Pool>,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    #[serde(default, rename = "origin")]
    pub origins: Vec<Origin>,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub cluster: Cluster,
    pub fleet: Option<Fleet>,
    pub waf: Option<Waf>,
    #[serde(default)]
    pub audit: Audit,
}

/// `[waf]`: rules in ModSecurity's language run over every request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waf {
    /// Rule files, in order (`*` in a file name).
    pub rules: Spanned<Vec<String>>,
    /// Sets `tx.paranoia_level` before the rules run (1 to 4).
    pub paranoia: Option<Spanned<u8>>,
    /// `block` (deny what the rules deny) or `detect` (log it only).
    pub mode: Option<Spanned<String>>,
    /// How much of a request body the rules read (`"1MiB"`).
    pub body_limit: Option<Spanned<String>>,
    /// Past the limit: `reject` (413) or `inspect` (the first part is
    /// inspected, the whole body forwarded).
    pub body_limit_action: Option<Spanned<String>>,
    /// Exclusions for every route: `"920350"`, `"942100-942199"`,
    /// `"tag:attack-sqli"`, `"942100 ARGS:password"`.
    pub exclude: Option<Spanned<Vec<String>>>,
}

/// `[fleet]`: the configuration comes from etcd, shared by every instance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// etcd's client URLs, `http://HOST:PORT` or `https://HOST:PORT`.
    pub etcd: Spanned<Vec<String>>,
    /// Where the fleet's keys live (default `/rampart`).
    pub prefix: Option<Spanned<String>>,
    /// This instance's name in the fleet (default: the host name).
    pub node: Option<Spanned<String>>,
    /// etcd credentials: a user and its password (inline or in a file).
    pub username: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    /// For `https://` endpoints: the CA that signs etcd's certificate (a
    /// PEM file; default: the host's trust store).
    pub ca: Option<Spanned<String>>,
    /// A client certificate and key for etcd, PEM files.
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    /// How long a call to etcd may take.
    pub timeout: Option<Spanned<String>>,
    /// A file holding the fleet's secret key (64 hex digits): certificates
    /// and keys are sealed with it before they go to etcd.
    pub secret_key_file: Option<Spanned<String>>,
}

/// `[audit]`: how `rampart audit` judges, and findings accepted on purpose.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// A certificate that expires within this is a finding (default 30 days).
    pub cert_warning: Option<Spanned<String>>,
    #[serde(default, rename = "ack")]
    pub acks: Vec<AuditAck>,
}

/// `[[audit.ack]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAck {
    pub id: Spanned<String>,
    /// The host, pool, listener... the finding is about; absent: all of them.
    pub subject: Option<String>,
    pub reason: Spanned<String>,
}

/// `[cluster]`: state shared with the other instances of a fleet.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`: where rate limits with
    /// `scope = "cluster"` count and bans are shared.
    pub redis: Option<Spanned<String>>,
    /// How long a decision may wait for Redis before the local one is used.
    pub timeout: Option<Spanned<String>>,
    /// The other instances' admin APIs, for the fleet view.
    #[serde(default)]
    pub peers: Vec<Peer>,
}

/// One entry of `[cluster] peers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Shown in the fleet view (default: the address).
    pub name: Option<Spanned<String>>,
    /// The peer's admin listener, `IP:PORT`.
    pub address: Spanned<String>,
    /// Its admin token, inline or in a file.
    pub token: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
}

/// `[[rule]]`: a request rule of the firewall.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: Spanned<String>,
    pub listeners: Option<Spanned<Vec<String>>>,
    /// `allow`, `deny`, `tarpit`, `rate_limit` or `log`.
    pub action: Spanned<String>,
    /// For deny and tarpit (default 403).
    pub status: Option<Spanned<u16>>,
    pub body: Option<String>,
    /// For tarpit (default "2s").
    pub delay: Option<Spanned<String>>,
    /// For rate_limit: requests per second.
    pub rate: Option<Spanned<u32>>,
    /// For rate_limit: bucket size (default = rate).
    pub burst: Option<Spanned<u32>>,
    /// For rate_limit: what to count by: `ip` (default), `header:NAME`, `route`, `global`.
    pub key: Option<Spanned<Vec<String>>>,
    /// For rate_limit: `local` (default: this instance's own buckets) or
    /// `cluster` (buckets in `[cluster] redis`, shared by every instance).
    pub scope: Option<Spanned<String>>,
    #[serde(rename = "match", default)]
    pub conditions: RuleMatch,
}

/// `[rule.match]`: every condition given must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    pub methods: Option<Spanned<Vec<String>>>,
    pub host: Option<Spanned<String>>,
    pub path_prefix: Option<Spanned<String>>,
    pub path_regex: Option<Spanned<String>>,
    /// Match `path_prefix` and `path_regex` ignoring ASCII case (default false).
    pub path_case_insensitive: Option<bool>,
    pub header: Option<HeaderMatch>,
    pub query: Option<QueryMatch>,
    pub client: Option<Spanned<Vec<String>>>,
    pub sni: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: Spanned<String>,
    pub equals: Option<String>,
    pub regex: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryMatch {
    pub name: String,
    pub equals: Option<String>,
}

/// `[admin]`: the admin API listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Default true.
    pub enabled: Option<bool>,
    /// Default `127.0.0.1:9900`; a non-loopback address needs a token.
    pub address: Option<Spanned<String>>,
    /// Bearer token required on every request when set.
    pub token: Option<Spanned<String>>,
    /// A file holding the token (first line), instead of `token`.
    pub token_file: Option<Spanned<String>>,
}

/// `[limits]`: protection against oversized and slow requests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Request header size (default "64KiB"): beyond it, 431.
    pub max_header_bytes: Option<Spanned<String>>,
    /// Number of request headers (default 100): beyond it, 431.
    pub max_headers: Option<Spanned<usize>>,
    /// Request target length in bytes (default 8192): beyond it, 414.
    pub max_uri_length: Option<Spanned<usize>>,
    /// Request body size (default: no limit; `[[route]] max_body` overrides): beyond it, 413.
    pub max_body: Option<Spanned<String>>,
    /// Slowest request body accepted, per second, after `body_grace` (default "1KiB").
    pub min_body_rate: Option<Spanned<String>>,
    /// Time a body may take before `min_body_rate` applies (default "10s").
    pub body_grace: Option<Spanned<String>>,
    /// HTTP/2 streams open at once per connection (default 256).
    pub http2_max_concurrent_streams: Option<u32>,
    /// HTTP/2 streams reset by the client before being served that are
    /// tolerated at once (rapid-reset protection; default 20).
    pub http2_max_pending_resets: Option<usize>,
    /// New QUIC handshakes per second (per listener) above which clients
    /// get a Retry first, to prove their address (default 200).
    pub quic_retry_above: Option<u32>,
    /// Send every new QUIC client a Retry (default false).
    pub quic_retry_always: Option<bool>,
}

/// `[topology]`: the hosts of the infrastructure, for host firewalls.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Networks allowed to reach ssh and the admin API.
    pub admin_cidr: Spanned<Vec<String>>,
    pub ssh_port: Option<u16>,
    pub admin_port: Option<u16>,
    pub metrics_port: Option<u16>,
    pub db_port: Option<u16>,
    /// DNS resolvers every host may query (udp and tcp 53).
    pub dns: Option<Spanned<Vec<String>>>,
    /// NTP servers every host may query (udp 123).
    pub ntp: Option<Spanned<Vec<String>>>,
    /// Package mirrors every host may reach (tcp 80 and 443).
    pub mirrors: Option<Spanned<Vec<String>>>,
    /// Addresses that float between the `lb` hosts (keepalived, VRRP).
    pub floating_addresses: Option<Spanned<Vec<String>>>,
    #[serde(rename = "host")]
    pub hosts: Spanned<Vec<TopologyHost>>,
}

/// `[[topology.host]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyHost {
    pub name: Spanned<String>,
    pub addresses: Spanned<Vec<String>>,
    /// `lb`, `web`, `app`, `db`, `monitor`.
    pub roles: Spanned<Vec<String>>,
    /// Service ports of web/app roles.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Extra nft rules for the host's input chain.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Extra nft rules for the host's output chain.
    #[serde(default)]
    pub extra_out: Vec<String>,
    /// What else the host may connect to: `ADDRESS:PORT`, `CIDR:PORT` or
    /// `HOST:PORT` (a host of the topology).
    pub egress_to: Option<Spanned<Vec<String>>>,
    /// Leave outgoing traffic unrestricted on this host.
    #[serde(default)]
    pub egress_open: bool,
}

/// `[firewall]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// Peers whose PROXY protocol header or `X-Forwarded-For` is believed.
    pub trusted_proxies: Option<Spanned<Vec<String>>>,
    /// Connections one client may hold open at once (default: no limit).
    pub max_connections_per_client: Option<u32>,
    /// New connections one client may open per second (default: no limit).
    pub new_connections_per_client_per_second: Option<u32>,
}

/// `[bans]`: automatic bans of clients that keep breaking the rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bans {
    /// Violations (denials, 429s, malformed requests) that ban a client; absent = no automatic bans.
    pub after: Option<Spanned<u32>>,
    /// Within this long (default "60s").
    pub window: Option<Spanned<String>>,
    /// For this long (default "10m").
    pub duration: Option<Spanned<String>>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsCfg {
    /// Count requests per listener, route and server (default true).
    pub enabled: Option<bool>,
}

/// `[access_log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// Default false.
    pub enabled: Option<bool>,
    /// `json` (default) or `combined`.
    pub format: Option<Spanned<String>>,
    /// `stdout` (default) or a file path.
    pub path: Option<String>,
    /// Lines waiting to be written before new ones are dropped (default 8192).
    pub buffer: Option<Spanned<usize>>,
}

/// `[alerts]`: where alert notifications go.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// `http://HOST:PORT/PATH` or `https://…` to POST notifications to
    /// (JSON).
    pub webhook: Option<Spanned<String>>,
    /// Whom an `https://` webhook's certificate must chain to: `system`
    /// (default), `internal`, or a CA file.
    pub webhook_ca: Option<Spanned<String>>,
    pub webhook_timeout: Option<Spanned<String>>,
    /// Further attempts after a failed POST (default 3).
    pub webhook_retries: Option<u32>,
    /// How often rules are evaluated (default "1s").
    pub interval: Option<Spanned<String>>,
}

/// `[[alert]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: Spanned<String>,
    /// `qps_above`, `qps_below`, `error_ratio_above`, `p99_above`, `server_down`, `pool_down`, `cert_expiring`.
    pub kind: Spanned<String>,
    pub pool: Option<Spanned<String>>,
    pub server: Option<Spanned<String>>,
    pub listener: Option<Spanned<String>>,
    /// Requests per second, a ratio (0–1), or milliseconds, by kind.
    pub threshold: Option<Spanned<f64>>,
    /// `1s`, `10s` (default) or `60s`.
    pub window: Option<Spanned<String>>,
    /// For `cert_expiring`: days left.
    pub days: Option<Spanned<u32>>,
}

/// `[runtime]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Worker threads; 0 or absent means one per core.
    pub workers: Option<Spanned<u32>>,
    /// Where generated certificates and runtime state live.
    pub state_dir: Option<String>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub level: Option<String>,
    pub format: Option<Spanned<String>>,
}

/// `[timeouts]`: every value is a duration string such as `"5s"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub connect: Option<Spanned<String>>,
    pub response_header: Option<Spanned<String>>,
    pub client_idle: Option<Spanned<String>>,
    /// From a request's first byte to the end of its head (default "10s").
    pub request_header: Option<Spanned<String>>,
    pub backend_idle: Option<Spanned<String>>,
    /// A TCP-mode session with no byte moving either way for this long is
    /// closed (default "1h").
    pub tcp_idle: Option<Spanned<String>>,
    pub request: Option<Spanned<String>>,
    /// The longest wait for the next piece of a request body (default "60s").
    pub request_body_idle: Option<Spanned<String>>,
    pub drain: Option<Spanned<String>>,
    pub shutdown_delay: Option<Spanned<String>>,
}

/// `[tls]`: settings shared by every TLS listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Create a local CA and a `localhost` certificate when a TLS listener
    /// has no certificate of its own (default true).
    pub generate_local_ca: Option<bool>,
}

/// `[[listener]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    /// `http` (default) or `https`.
    pub protocol: Option<Spanned<String>>,
    /// Plain-HTTP listeners only: answer every request with a 308 to this
    /// HTTPS listener (by name).
    pub redirect_to: Option<Spanned<String>>,
    /// `Strict-Transport-Security` max-age, e.g. `"365d"`; absent = no header.
    pub hsts_max_age: Option<Spanned<String>>,
    #[serde(default)]
    pub hsts_include_subdomains: bool,
    /// Certificates chosen by SNI; the first is the default.
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<Certificate>,
    /// Offer HTTP/2 via ALPN (default true).
    pub http2: Option<bool>,
    /// Also serve HTTP/3 (QUIC) on the same address and port, over UDP
    /// (https listeners; default false).
    pub http3: Option<Spanned<bool>>,
    /// `http` (default) or `tcp`: bytes copied both ways to a server of
    /// `pool`, without interpretation.
    pub mode: Option<Spanned<String>>,
    /// `mode = "tcp"`: the pool whose servers take the connections.
    pub pool: Option<Spanned<String>>,
    /// `mode = "tcp"` over a pool with a `mysql` check: `writer` (only the
    /// single writable primary) or `reader` (replicas within `max_lag`).
    pub role: Option<Spanned<String>>,
    /// `role = "reader"`: the most replication lag a replica may have.
    pub max_lag: Option<Spanned<String>>,
    /// `role = "reader"`: use the primary when no replica qualifies.
    pub fallback_to_primary: Option<bool>,
    /// `mode = "tcp"`: send a PROXY protocol header (`v1` or `v2`) to the server.
    pub send_proxy: Option<Spanned<String>>,
    /// Client certificates: `required` or `optional` (default: not asked).
    pub client_auth: Option<Spanned<String>>,
    /// Who signs client certificates: `internal` or a PEM CA file.
    pub client_ca: Option<Spanned<String>>,
    /// Certificate revocation lists of `client_ca` (PEM or DER files):
    /// a revoked client certificate is refused.
    pub client_crl: Option<Spanned<OneOrMany>>,
    /// What an expired revocation list means: `fail_closed` (default:
    /// every client certificate is refused) or `fail_open` (the list is
    /// still used).
    pub crl_expired: Option<Spanned<String>>,
    /// Certificates from an ACME CA (Let's Encrypt and others).
    pub acme: Option<Spanned<Acme>>,
    /// Expect a PROXY protocol (v1 or v2) header from trusted proxies.
    pub proxy_protocol: Option<bool>,
    /// Client CIDR blocks allowed to connect (with any, the rest is denied).
    pub allow: Option<Spanned<Vec<String>>>,
    /// Client CIDR blocks refused at accept.
    pub deny: Option<Spanned<Vec<String>>>,
    /// Files of CIDR blocks, one per line (`#` comments).
    pub allow_file: Option<Spanned<String>>,
    pub deny_file: Option<Spanned<String>>,
}

/// `[listener.acme]`: the listener's certificate from an ACME CA, through
/// the TLS-ALPN-01 challenge answered on this listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acme {
    /// The CA's directory URL.
    pub directory: Spanned<String>,
    /// The names the certificate is for (DNS names that reach this listener).
    pub names: Spanned<Vec<String>>,
    /// A contact address given to the CA.
    pub email: Option<Spanned<String>>,
    /// A PEM file of CAs trusted for the ACME server's own HTTPS (default:
    /// the host's trust store); for test CAs such as Pebble.
    pub directory_ca: Option<Spanned<String>>,
    /// `tls-alpn-01` (default: answered by this listener) or `http-01`
    /// (answered by rampart's plain HTTP listeners, on port 80 for a real CA).
    pub challenge: Option<Spanned<String>>,
}

/// `[[listener.certificate]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// PEM certificate chain, leaf first.
    pub cert: Spanned<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Spanned<String>,
    /// SNI names this certificate answers (`example.com`, `*.example.com`).
    /// Defaults to the names in the certificate.
    pub names: Option<Spanned<Vec<String>>>,
}

/// `[[pool]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: Spanned<String>,
    /// `round_robin` (default), `weighted`, `least_requests`, `p2c_ewma`, `hash`.
    pub algorithm: Option<Spanned<String>>,
    /// For `hash`: `client_ip` (default), `header:NAME` or `cookie:NAME`.
    pub hash_key: Option<Spanned<String>>,
    /// Name of a cookie that pins a client to the server that first served it.
    pub sticky_cookie: Option<Spanned<String>>,
    /// `http1` (default) or `h2c` (HTTP/2 over cleartext) towards the servers.
    pub protocol: Option<Spanned<String>>,
    /// Idle keep-alive connections kept per server and worker (default 256).
    pub max_idle_per_server: Option<usize>,
    /// Most requests in flight to the whole pool (default: no limit).
    pub max_requests: Option<Spanned<u32>>,
    /// Ramp a recovered or new server's share up over this long (default off).
    pub slow_start: Option<Spanned<String>>,
    /// Further tries on another server when a retry is safe (default 2).
    pub retries: Option<Spanned<u32>>,
    /// A replayable request with no response head within this goes to
    /// another server (default off).
    pub per_try_timeout: Option<Spanned<String>>,
    /// Retries allowed as a share of requests (default 0.2).
    pub retry_budget_ratio: Option<Spanned<f64>>,
    /// Retries always allowed per second regardless of the ratio (default 10).
    pub retry_budget_min_per_second: Option<Spanned<u32>>,
    pub health_check: Option<HealthCheck>,
    pub outlier: Option<Outlier>,
    /// TLS to the servers (default: plaintext).
    pub tls: Option<Spanned<PoolTls>>,
    #[serde(rename = "server")]
    pub servers: Option<Spanned<Vec<Server>>>,
}

/// `[pool.tls]`: TLS (and mTLS) to the pool's servers; health checks use
/// the same settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTls {
    /// Who signs the servers' certificates: `system` (default, the host's
    /// trust store), `internal` (rampart's own CA), or a PEM file.
    pub ca: Option<Spanned<String>>,
    /// The name checked in every server's certificate and sent as SNI
    /// (default: the server's `tls_name`, else the host or IP of its address).
    pub server_name: Option<Spanned<String>>,
    /// A client certificate for mTLS: a PEM file (with `client_key`), or
    /// `internal` (issued and renewed by rampart's CA).
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    /// SHA-256 of the servers' public keys (SubjectPublicKeyInfo, hex): when
    /// set, a server's key must be one of these, besides verifying.
    pub pin_sha256: Option<Spanned<Vec<String>>>,
    /// Certificate revocation lists of `ca` (PEM or DER files): a server
    /// whose certificate is revoked gets no request.
    pub crl: Option<Spanned<OneOrMany>>,
    /// `fail_closed` (default) or `fail_open`, as for a listener.
    pub crl_expired: Option<Spanned<String>>,
}

/// A file name, or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// `[pool.health_check]`: active checks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// `http` (default), `tcp` or `mysql`.
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    /// Random extra delay added to each interval, up to this much.
    pub jitter: Option<Spanned<String>>,
    /// Consecutive passes to mark a server up (default 2).
    pub rise: Option<Spanned<u32>>,
    /// Consecutive failures to mark it down (default 3).
    pub fall: Option<Spanned<u32>>,
    pub method: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    /// Status ranges that pass, e.g. `["200-399"]` (default).
    pub expect_status: Option<Spanned<Vec<String>>>,
    pub body_contains: Option<String>,
    /// Send traffic to servers before their first verdict (default false).
    pub traffic_when_unknown: Option<bool>,
    /// `mysql` checks: the monitor user.
    pub user: Option<Spanned<String>>,
    /// `mysql` checks: the monitor user's password, inline...
    pub password: Option<Spanned<String>>,
    /// ...or in a file (its first line).
    pub password_file: Option<Spanned<String>>,
}

/// `[pool.outlier]`: passive checks (ejection).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    /// Consecutive failures that eject a server (default 5; 0 = off).
    pub consecutive_failures: Option<u32>,
    /// First ejection lasts this long; each later one longer (default "30s").
    pub base_ejection_time: Option<Spanned<String>>,
    /// At most this share of a pool is ejected at once (default 50).
    pub max_ejected_percent: Option<Spanned<u32>>,
    /// Count 5xx answers as failures (default false).
    pub on_5xx: Option<bool>,
}

/// `[[pool.server]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Defaults to the address (or the origin's name).
    pub name: Option<String>,
    /// `IP:PORT` or `HOST:PORT`; or use `origin` instead.
    pub address: Option<Spanned<String>>,
    /// The name of a built-in `[[origin]]` of this file: its address is used.
    pub origin: Option<Spanned<String>>,
    /// Most requests in flight to this server (default: no limit).
    pub max_requests: Option<u32>,
    pub weight: Option<Spanned<u32>>,
    /// With `[pool.tls]`: the name checked in this server's certificate
    /// and sent as SNI.
    pub tls_name: Option<Spanned<String>>,
}

/// `[[route]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Listener names this route applies to; absent = all.
    pub listeners: Option<Spanned<Vec<String>>>,
    /// `example.com` or `*.example.com`; absent = any host.
    pub host: Option<Spanned<String>>,
    /// Path prefix (default `/`).
    pub path: Option<Spanned<String>>,
    pub pool: Spanned<String>,
    /// Largest request body for this route (overrides `[limits] max_body`).
    pub max_body: Option<Spanned<String>>,
    /// Protocols a client may switch to with `Upgrade` (default `["websocket"]`;
    /// `[]` forwards no upgrade). Any other `Upgrade` is stripped.
    pub upgrades: Option<Spanned<Vec<String>>>,
    /// The web application firewall on this route: `"off"`, `"detect"`,
    /// `"block"` (default: `[waf] mode`).
    pub waf: Option<Spanned<String>>,
    /// WAF exclusions on this route only (as `[waf] exclude`).
    pub waf_exclude: Option<Spanned<Vec<String>>>,
}

/// `[[origin]]`: a built-in static web server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    /// Directory to serve; absent with `demo = true` serves the embedded demo site.
    pub root: Option<Spanned<String>>,
    #[serde(default)]
    pub demo: bool,
    /// Serve TLS (default: plaintext).
    pub tls: Option<Spanned<OriginTls>>,
}

/// `[origin.tls]`: the built-in web server over TLS, optionally requiring
/// client certificates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginTls {
    /// `internal` (issued and renewed by rampart's CA) or a PEM chain file
    /// (with `key`).
    pub cert: Spanned<String>,
    pub key: Option<Spanned<String>>,
    /// When set, clients must show a certificate from this CA: `internal`
    /// (rampart's CA, whose revocation list is checked) or a PEM file.
    pub client_ca: Option<Spanned<String>>,
}
