//! `rampart proxy --to ADDR [--to ADDR...] [--from ADDR]`: a reverse proxy
//! for the common case without writing a config file — HTTPS (HTTP/2 and
//! HTTP/1.1) with a certificate from the local CA, round robin over the
//! servers with health checks, and the dashboard on the admin port. The
//! TOML it runs is an ordinary config (`--print-config` shows it), so a
//! user can save it and grow from there.

use std::path::PathBuf;

use clap::Args;

use crate::config::{self, model::Model};
use crate::tls::SystemEnv;

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// A server to send requests to, `HOST:PORT` (repeat for several).
    #[arg(long = "to", required = true, value_name = "HOST:PORT")]
    pub to: Vec<String>,
    /// Where to serve HTTPS: `IP:PORT`, or `:PORT` for every address.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub from: String,
    /// Check each server with `GET PATH` (any 2xx or 3xx passes) instead of
    /// a TCP connect.
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,
    /// Port of the admin API and dashboard on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9900)]
    pub admin_port: u16,
    /// Where the generated CA and certificate are kept.
    #[arg(long, default_value = ".rampart")]
    pub state_dir: PathBuf,
    /// Print the configuration this runs, and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// The configuration `rampart proxy` runs, as TOML.
pub fn config_text(a: &ProxyArgs) -> String {
    let from = match a.from.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => a.from.clone(),
    };
    let check = match &a.health_path {
        Some(path) => format!("type = \"http\"\npath = {path:?}\n"),
        None => "type = \"tcp\"\n".to_string(),
    };
    let mut out = format!(
        "# Written by `rampart proxy`: run it with `rampart run -c FILE`.\n\
         [runtime]\nstate_dir = {state:?}\n\n\
         [admin]\naddress = \"127.0.0.1:{admin}\"\n\n\
         # HTTPS with HTTP/2; the certificate comes from the local CA in state_dir.\n\
         [[listener]]\nname = \"https\"\naddress = \"{from}\"\nprotocol = \"https\"\n\n\
         [[pool]]\nname = \"app\"\nalgorithm = \"round_robin\"\n\n\
         [pool.health_check]\n{check}interval = \"2s\"\nrise = 1\n",
        state = a.state_dir.display().to_string(),
        admin = a.admin_port,
    );
    for to in &a.to {
        out.push_str(&format!("\n[[pool.server]]\naddress = {to:?}\n"));
    }
    out.push_str("\n[[route]]\npool = \"app\"\n");
    out
}

/// The configuration, validated like any other.
pub fn model(a: &ProxyArgs) -> Result<Model, config::ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    config::load_str(&config_text(a), "<rampart proxy>", &cwd, &SystemEnv)
}
