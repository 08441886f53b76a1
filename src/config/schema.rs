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
    #[serde(default, rename = "listener")]
    pub listeners: Vec<Listener>,
    #[serde(default, rename = "pool")]
    pub pools: Vec<Pool>,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    #[serde(default, rename = "origin")]
    pub origins: Vec<Origin>,
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
    pub backend_idle: Option<Spanned<String>>,
    pub request: Option<Spanned<String>>,
    pub drain: Option<Spanned<String>>,
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
    #[serde(rename = "server")]
    pub servers: Option<Spanned<Vec<Server>>>,
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
    pub weight: Option<Spanned<u32>>,
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
}
