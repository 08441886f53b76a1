//! `rampart proxy --to ADDR [--to ADDR...] [--from ADDR] [--domain NAME]`:
//! a reverse proxy for the common case without writing a config file —
//! HTTPS (HTTP/2 and HTTP/1.1) with a certificate from the local CA, or from
//! an ACME CA for a public name (Let's Encrypt unless `--acme-directory`
//! names another), round robin over the servers with health checks, and the
//! dashboard on the admin port. The TOML it runs is an ordinary config
//! (`--print-config` shows it), so a user can save it and grow from there.

use std::path::PathBuf;

use clap::Args;

use crate::config::{self, model::Model};
use crate::tls::SystemEnv;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// A server to send requests to, `HOST:PORT` (repeat for several).
    #[arg(long = "to", required = true, value_name = "HOST:PORT")]
    pub to: Vec<String>,
    /// Where to serve HTTPS: `IP:PORT`, or `:PORT` (or just `PORT`) for
    /// every address.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub from: String,
    /// Check each server with `GET PATH` (any 2xx or 3xx passes) instead of
    /// a TCP connect.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Port of the admin API and dashboard on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9900)]
    pub admin_port: u16,
    /// Serve this public DNS name with a certificate from an ACME CA
    /// (TLS-ALPN-01 on the HTTPS port, which the CA must reach); repeat
    /// for several. Without it, the local CA's `localhost` certificate.
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// The ACME directory (default: Let's Encrypt). Naming one also skips
    /// the check that the names resolve to public addresses.
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// A contact address given to the ACME CA.
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// A PEM file trusted for the ACME directory's own HTTPS (a test CA).
    #[arg(long, value_name = "FILE")]
    pub acme_ca: Option<PathBuf>,
    /// Where the generated CA and certificate are kept.
    #[arg(long, default_value = ".rampart")]
    pub state_dir: PathBuf,
    /// Print the configuration this runs, and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `s` as a TOML string, escaped as TOML escapes (not as Rust does).
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The configuration `rampart proxy` runs, as TOML.
pub fn config_text(a: &ProxyArgs) -> String {
    // An invalid --from is refused before this runs (see `model`); printed
    // as given otherwise.
    let from = listen_address(&a.from).map_or_else(|_| a.from.clone(), |s| s.to_string());
    let check = match &a.health_path {
        Some(path) => format!("type = \"http\"\npath = {}\n", quote(path)),
        None => "type = \"tcp\"\n".to_string(),
    };
    let mut out = format!(
        "# Written by `rampart proxy`: run it with `rampart run -c FILE`.\n\
         [runtime]\nstate_dir = {state}\n\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         {tls_comment}\n\
         [[listener]]\nname = \"https\"\naddress = {from}\nprotocol = \"https\"\n{acme}\n\
         [[pool]]\nname = \"app\"\nalgorithm = \"round_robin\"\n\n\
         [pool.health_check]\n{check}interval = \"2s\"\nrise = 1\n",
        state = quote(&a.state_dir.display().to_string()),
        from = quote(&from),
        admin = a.admin_port,
        tls_comment = if a.domains.is_empty() {
            "# HTTPS with HTTP/2; the certificate comes from the local CA in state_dir."
        } else {
            "# HTTPS with HTTP/2; the certificate comes from the ACME CA (TLS-ALPN-01 on this port)."
        },
        acme = acme_block(a),
    );
    for to in &a.to {
        out.push_str(&format!("\n[[pool.server]]\naddress = {}\n", quote(to)));
    }
    out.push_str("\n[[route]]\npool = \"app\"\n");
    out
}

/// Let's Encrypt's production directory.
const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

fn acme_block(a: &ProxyArgs) -> String {
    if a.domains.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n[listener.acme]\ndirectory = {}\nnames = {}\n",
        quote(a.acme_directory.as_deref().unwrap_or(LETS_ENCRYPT)),
        toml::Value::Array(a.domains.iter().map(|d| toml::Value::String(d.clone())).collect())
    );
    if let Some(e) = &a.email {
        s.push_str(&format!("email = {}\n", quote(e)));
    }
    if let Some(ca) = &a.acme_ca {
        s.push_str(&format!("directory_ca = {}\n", quote(&ca.display().to_string())));
    }
    s
}

/// Why a name cannot get a certificate from a public ACME CA: it does not
/// resolve, or only to addresses the CA cannot reach.
fn not_public(name: &str) -> Option<String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::IpAddr> = match (name, 443).to_socket_addrs() {
        Ok(a) => a.map(|a| a.ip()).collect(),
        Err(e) => return Some(format!("`{name}` does not resolve ({e})")),
    };
    if addrs.iter().any(|ip| crate::firewall::cidr::is_public(*ip)) {
        return None;
    }
    let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    Some(format!(
        "`{name}` resolves only to {}, which a public ACME CA cannot reach",
        list.join(", ")
    ))
}

/// `--from` as a socket address: `IP:PORT`, `[IPv6]:PORT`, or `:PORT` and
/// `PORT` for every IPv4 address.
pub fn listen_address(from: &str) -> Result<std::net::SocketAddr, String> {
    let bare = from.strip_prefix(':').unwrap_or(from);
    if let Ok(port) = bare.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([0, 0, 0, 0], port)));
    }
    from.parse().map_err(|_| {
        format!(
            "--from {from}: give IP:PORT (127.0.0.1:8443, [::1]:8443), or :PORT or PORT for every address"
        )
    })
}

/// The configuration, validated like any other.
pub fn model(a: &ProxyArgs) -> Result<Model, String> {
    listen_address(&a.from)?;
    if a.acme_directory.is_none() && !a.domains.is_empty() {
        if !a.from.ends_with(":443") {
            return Err(format!(
                "--from {}: Let's Encrypt checks the name on port 443 (TLS-ALPN-01), so serve it there (or give --acme-directory)",
                a.from
            ));
        }
        if let Some(why) = a.domains.iter().find_map(|d| not_public(d)) {
            return Err(format!(
                "{why}: point its DNS at this machine, give --acme-directory for a private ACME CA, or leave out --domain to use the local CA"
            ));
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    config::load_str(&config_text(a), "<rampart proxy>", &cwd, &SystemEnv).map_err(|e| e.to_string())
}
