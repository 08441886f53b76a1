//! Listeners, routes and origins of the validated model.

use std::net::SocketAddr;
use std::path::PathBuf;

use http::HeaderValue;
use ipnet::IpNet;

use super::CertSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub addr: SocketAddr,
    pub kind: ListenerKind,
    /// Who may connect; checked at accept.
    pub clients: ClientFilter,
    /// Connections start with a PROXY protocol header (from trusted proxies only).
    pub proxy_protocol: bool,
    /// `mode = "tcp"`: connections are relayed to a server of this pool
    /// (after TLS on https listeners); None: HTTP.
    pub tcp_pool: Option<String>,
    /// A database endpoint over `tcp_pool` (whose check is `mysql`).
    pub db_endpoint: Option<DbEndpoint>,
    /// `mode = "tcp"`: a PROXY protocol header sent to the server first.
    pub send_proxy: Option<ProxyVersion>,
}

/// Which servers of a database pool a TCP listener may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEndpoint {
    /// Only the single writable primary; none (refused) when no server or
    /// more than one is writable.
    Writer,
    /// Replicas whose threads run and whose lag is at most `max_lag`; the
    /// primary when none qualifies and `fallback_to_primary`.
    Reader {
        max_lag: std::time::Duration,
        fallback_to_primary: bool,
    },
}

/// A PROXY protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    V1,
    V2,
}

/// A listener's `allow` and `deny` lists, inline entries and list files
/// together. With any `allow` entry everything else is refused; the
/// longest matching prefix decides (the firewall's `CidrSet` runs it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFilter {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plain HTTP/1.1; with `redirect_to`, every request gets a 308 to that
    /// HTTPS listener's port.
    Http {
        redirect_to: Option<String>,
    },
    Https(HttpsSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsSettings {
    /// Certificates by SNI; the first is the default. Empty = use the
    /// generated local certificate.
    pub certs: Vec<CertSpec>,
    /// `Strict-Transport-Security` to send, if any.
    pub hsts: Option<Hsts>,
    pub http2: bool,
    /// HTTP/3 over QUIC on the same address and port (UDP).
    pub http3: bool,
    /// Client certificates asked for; None: not asked.
    pub client_auth: Option<ClientAuth>,
    /// Certificates from an ACME CA; None: from files (or the local CA).
    pub acme: Option<AcmeSettings>,
}

/// `hsts_max_age` and `hsts_include_subdomains`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hsts {
    pub max_age: std::time::Duration,
    pub include_subdomains: bool,
}

impl Hsts {
    /// The header's value.
    pub fn header(&self) -> HeaderValue {
        let sub = if self.include_subdomains {
            "; includeSubDomains"
        } else {
            ""
        };
        HeaderValue::from_str(&format!("max-age={}{sub}", self.max_age.as_secs()))
            .unwrap_or(HeaderValue::from_static("max-age=0"))
    }
}

/// `[listener.acme]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    pub directory: String,
    pub names: Vec<String>,
    pub email: Option<String>,
    /// Trusted for the ACME server's HTTPS, instead of the host's store.
    pub directory_ca: Option<PathBuf>,
    /// Answer HTTP-01 (on the plain listeners) instead of TLS-ALPN-01.
    pub http01: bool,
}

/// Client certificates on an https listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// A client without a certificate is refused (else it is served, with
    /// no identity).
    pub required: bool,
    pub roots: super::TlsRoots,
    /// Revocation lists of `roots` (`client_crl`).
    pub revocation: Option<Box<super::Revocation>>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Listener names; `None` = every listener.
    pub listeners: Option<Vec<String>>,
    pub host: HostMatch,
    pub path_prefix: String,
    /// Index into [`Model::pools`](super::Model::pools).
    pub pool: usize,
    /// Largest request body (overrides the global limit).
    pub max_body: Option<u64>,
    /// Upgrade protocols forwarded (lower-case names, without version).
    pub upgrades: Vec<String>,
    /// The WAF's mode on this route (None: `[waf] mode`).
    pub waf: Option<super::RouteWaf>,
    /// WAF exclusions on this route only.
    pub waf_exclude: crate::waf::Exclusions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub name: String,
    pub addr: SocketAddr,
    pub content: OriginContent,
    /// Served over TLS; None: plaintext.
    pub tls: Option<OriginTls>,
}

/// `[origin.tls]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginTls {
    /// The server certificate: issued by the internal CA, or from files.
    pub cert: super::CertSource,
    /// Who signs the certificates clients must show (None: none asked).
    pub client_ca: Option<super::TlsRoots>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginContent {
    Dir(PathBuf),
    Demo,
}
