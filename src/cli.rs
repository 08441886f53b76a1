//! The command line: `up` (the demo stack), `run` (a deployment from a
//! config file), `proxy` (a reverse proxy without a config file), `check`
//! (validate a config) and the tools around them, plus logging setup.
//!
//! Exit codes: 0 success, 1 failure while running, 2 invalid configuration
//! or arguments.

mod firewall;
mod fleet;
mod proxy;

pub use firewall::FirewallCmd;

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use crate::app::RunningApp;
use crate::config::defaults::LOG_LEVEL;
use crate::config::{self, Model};
use crate::tls::SystemEnv;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "TLS termination, load balancing and more, in one binary"
)]
pub struct Cli {
    /// Log level or filter (e.g. `debug`, `rampart=trace`); overrides RUST_LOG and the config.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log format: human-readable text, JSON lines, or auto (text on a terminal, JSON otherwise).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
    Auto,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole demo stack on localhost: an HTTPS load balancer in front of three built-in web servers.
    Up(UpArgs),
    /// Run a deployment described by a config file.
    Run {
        /// The config file.
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
    },
    /// Ask a running rampart (through its admin API) to load its config file again.
    Reload {
        /// The config file of the running instance (for the admin address and token).
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        /// The admin API address, if not the config's.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
    /// A live terminal view of a running rampart (through its admin API).
    Top {
        /// The config file of the running instance (for the admin address and token).
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        /// The admin API address, instead of the config's.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
    },
    /// Host firewalls (nftables) rendered from the config's [topology].
    Firewall {
        #[command(subcommand)]
        action: FirewallCmd,
    },
    /// The fleet's configuration in etcd ([fleet]): push, history, diff,
    /// rollback, status.
    Fleet {
        #[command(subcommand)]
        action: fleet::FleetCmd,
    },
    /// rampart's internal CA (in the state directory): create it, issue and list certificates.
    /// With a config whose [fleet] has a secret_key_file, the CA is the fleet's (in etcd).
    Ca {
        /// The state directory that holds the CA (default: the config's
        /// `[runtime] state_dir`, else `.rampart`).
        #[arg(long, global = true)]
        state_dir: Option<PathBuf>,
        /// A config: its state directory, and with [fleet] the fleet's CA.
        #[arg(short, long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: CaCmd,
    },
    /// Review the infrastructure the config describes: single points of
    /// failure, exposure, TLS, dead rules, host firewalls. Exit status 1 when
    /// a finding at or above --fail-on is not acknowledged in [[audit.ack]].
    Audit {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        /// This machine is this topology host (default: the host whose
        /// address is assigned here, if any); its live firewall is checked.
        #[arg(long)]
        host: Option<String>,
        /// Do not read the kernel's live ruleset (no root needed).
        #[arg(long)]
        no_live: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// The lowest severity that fails the audit.
        #[arg(long, value_enum, default_value = "high")]
        fail_on: crate::audit::Severity,
    },
    /// Describe the infrastructure of the config's [topology], host by host:
    /// roles, components, ports and who may reach them, what each may
    /// reach, monitors and certificates.
    Plan {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Also write the diagram (hosts by tier, arrows for allowed traffic) to FILE.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Validate a config file (and its certificates) without running it.
    Check {
        /// The config file.
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
    },
    /// Print shell completions for rampart (e.g. `rampart completions bash > /etc/bash_completion.d/rampart`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print rampart's manual page (roff), generated from these commands;
    /// with --dir, write it and one page per subcommand (rampart-up.1, ...)
    /// there, the pages the main one refers to.
    Man {
        /// Write every page into this directory instead of printing one.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// A reverse proxy without a config file: HTTPS (local CA) in front of
    /// the given servers, with health checks and the dashboard.
    Proxy(proxy::ProxyArgs),
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Create the CA (ECDSA P-256) if there is none; print where it is.
    Init,
    /// Issue a certificate (ECDSA P-256) signed by the CA.
    Issue {
        /// The certificate's name: files `tls/issued/NAME.pem` and `NAME-key.pem`.
        name: String,
        /// A DNS name or IP address it is valid for (repeat; default: NAME).
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Days it is valid for.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// For a client (mTLS) instead of a server.
        #[arg(long)]
        client: bool,
    },
    /// List the certificates the CA issued, with their names and expiry.
    List,
    /// Revoke a certificate the CA issued: it joins the CA's revocation
    /// list (`tls/crl.pem`), which rampart's built-in origins check.
    Revoke {
        /// The certificate's name, as given to `issue`.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Where the generated CA and certificates are kept.
    #[arg(long, default_value = ".rampart")]
    pub state_dir: PathBuf,
    /// HTTPS port of the load balancer.
    #[arg(long, default_value_t = 8443)]
    pub https_port: u16,
    /// Plain HTTP port (redirects to HTTPS).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// Port of web-01; web-02 and web-03 take the next two (0: any free ports).
    #[arg(long, default_value_t = 9101)]
    pub web_port: u16,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Port of the admin API and dashboard on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 9900)]
    pub admin_port: u16,
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { ref config } => check(config),
        Command::Plan {
            ref config,
            format,
            ref svg,
        } => plan(config, format, svg.as_deref()),
        Command::Audit {
            ref config,
            ref host,
            no_live,
            format,
            fail_on,
        } => audit(config, host.clone(), !no_live, format, fail_on),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "rampart", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { ref dir } => man(dir.as_deref()),
        Command::Reload { ref config, admin } => crate::client::reload(config, admin, &SystemEnv),
        Command::Top {
            ref config,
            admin,
            once,
        } => top(config, admin, once),
        Command::Firewall { ref action } => firewall::run(action),
        Command::Fleet { ref action } => fleet::run(action),
        Command::Ca {
            ref state_dir,
            ref config,
            ref action,
        } => {
            let model = match config.as_deref().map(load).transpose() {
                Ok(m) => m,
                Err(code) => return code,
            };
            let dir = state_dir
                .clone()
                .or_else(|| model.as_ref().map(|m| m.state_dir.clone()))
                .unwrap_or_else(|| PathBuf::from(".rampart"));
            if let Some(settings) = model.as_ref().and_then(|m| m.fleet.as_ref()) {
                if let Err(code) = fleet_ca(settings, &dir) {
                    return code;
                }
            }
            ca(&dir, action)
        }
        Command::Run { ref config } => match load(config) {
            Ok(model) => serve(&cli, model, false),
            Err(code) => code,
        },
        Command::Proxy(ref args) if args.print_config => {
            print!("{}", proxy::config_text(args));
            ExitCode::SUCCESS
        }
        Command::Proxy(ref args) => match proxy::model(args) {
            // Told as `up` tells it: the URL with a name the certificate
            // holds, the curl line, the dashboard.
            Ok(model) => serve(&cli, model, true),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Up(ref args) => match demo_model(args) {
            Ok(model) => serve(&cli, model, true),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn top(config: &Path, admin: Option<std::net::SocketAddr>, once: bool) -> ExitCode {
    // With --admin, the config file is optional (no token then).
    let model = match (admin, config::load_file(config, &SystemEnv)) {
        (_, Ok(m)) => Some(m),
        (Some(_), Err(_)) => None,
        (None, Err(e)) => {
            eprintln!("error: {e} (or give the admin address with --admin)");
            return ExitCode::from(2);
        }
    };
    let token = model.as_ref().and_then(|m| m.admin.token.clone());
    let Some(addr) = admin.or(model.and_then(|m| m.admin.addr)) else {
        eprintln!("error: the admin API is disabled in {}", config.display());
        return ExitCode::from(2);
    };
    crate::top::run(addr, token, once)
}

/// The fleet's CA made this state directory's before a `rampart ca` command.
fn fleet_ca(settings: &config::model::FleetSettings, dir: &Path) -> Result<(), ExitCode> {
    if settings.secret_key.is_none() {
        eprintln!("error: [fleet] has no secret_key_file: the fleet's CA is sealed with it in etcd; without it, give --state-dir alone for this instance's own CA");
        return Err(ExitCode::from(2));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })?;
    rt.block_on(crate::app::share_ca(settings, dir))
        .map(|_| ())
        .map_err(|e| {
            eprintln!("error: the fleet's CA: {e}");
            ExitCode::from(2)
        })
}

fn ca(state_dir: &Path, cmd: &CaCmd) -> ExitCode {
    use crate::tls::ca;
    let date = |secs: i64| {
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64))
    };
    let done = match cmd {
        CaCmd::Init => ca::ensure_ca(state_dir).map(|p| println!("internal CA: {}", p.display())),
        CaCmd::Issue {
            name,
            sans,
            days,
            client,
        } => ca::issue(state_dir, name, sans, *days, *client).map(|i| {
            println!("certificate: {}", i.cert_path.display());
            println!("key:         {}", i.key_path.display());
            println!("valid until: {}", date(i.not_after));
        }),
        CaCmd::Revoke { name } => ca::revoke(state_dir, name).map(|serial| {
            println!(
                "revoked {name} (serial {serial}); revocation list: {}",
                ca::crl_path(state_dir).display()
            );
        }),
        CaCmd::List => ca::list(state_dir).map(|all| {
            for c in all {
                println!("{:<24} {}  {}", c.name, date(c.not_after), c.names.join(", "));
            }
        }),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The config at `path`, or exit status 2 once the error is printed.
fn load(path: &Path) -> Result<Model, ExitCode> {
    config::load_file(path, &SystemEnv).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn plan(path: &Path, format: ReportFormat, svg: Option<&Path>) -> ExitCode {
    let model = match load(path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let Some(p) = crate::plan::plan(&model) else {
        eprintln!(
            "error: {}: there is no [topology] section to plan from",
            path.display()
        );
        return ExitCode::from(2);
    };
    match format {
        ReportFormat::Text => print!("{}", crate::plan::text(&p)),
        ReportFormat::Json => print!("{}", crate::plan::json(&p)),
    }
    if let Some(file) = svg {
        if let Err(e) = std::fs::write(file, crate::plan::svg(&p)) {
            eprintln!("error: cannot write {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn audit(
    path: &Path,
    host: Option<String>,
    live: bool,
    format: ReportFormat,
    fail_on: crate::audit::Severity,
) -> ExitCode {
    let model = match load(path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let fleet = model.fleet.as_ref().map(fleet::facts);
    let report = crate::audit::audit(&model, &crate::audit::Local { host, live, fleet }, now);
    let source = path.display().to_string();
    match format {
        ReportFormat::Text => print!("{}", crate::audit::text(&report, &source)),
        ReportFormat::Json => print!("{}", crate::audit::json(&report, &source)),
    }
    if report.worst().is_some_and(|w| w >= fail_on) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Err(code) => code,
        Ok(model) => {
            let mut problems = 0;
            for l in &model.listeners {
                if let config::model::ListenerKind::Https(s) = &l.kind {
                    for c in &s.certs {
                        for p in c.problems() {
                            eprintln!("error: listener `{}`: {p}", l.name);
                            problems += 1;
                        }
                    }
                }
            }
            if problems > 0 {
                return ExitCode::from(2);
            }
            for w in crate::tls::check::warnings(&model) {
                eprintln!("warning: {w}");
            }
            for w in crate::http3::warnings(&model) {
                eprintln!("warning: {w}");
            }
            if let Some(waf) = &model.waf {
                for n in waf.rules.notes() {
                    eprintln!("note: [waf] {n}");
                }
            }
            if let Some(w) = serves_nothing(&model) {
                // Fine for `plan` and `audit`; `run` refuses it.
                eprintln!("warning: {w}");
            }
            println!(
                "{}: ok ({}, {}, {}, {})",
                path.display(),
                count(model.listeners.len(), "listener"),
                count(model.pools.len(), "pool"),
                count(model.routes.len(), "route"),
                count(model.origins.len(), "origin")
            );
            ExitCode::SUCCESS
        }
    }
}

/// "1 listener", "2 listeners".
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The demo stack as a config, validated like any other.
pub fn demo_model(a: &UpArgs) -> Result<Model, config::ConfigError> {
    let toml = format!(
        r#"
[runtime]
state_dir = "{state}"
{workers}

[admin]
address = "127.0.0.1:{admin}"

[[listener]]
name = "https"
address = "127.0.0.1:{https}"
protocol = "https"

[[listener]]
name = "http"
address = "127.0.0.1:{http}"
redirect_to = "https"

# The balancer -> web server hop is mTLS: the web servers answer only TLS
# with a client certificate from the demo's own CA, which rampart holds.
[[pool]]
name = "web"
[pool.tls]
ca = "internal"
client_cert = "internal"
# Each web server is asked for its page every 2 s (over the same mTLS).
[pool.health_check]
type = "http"
path = "/"
interval = "2s"
rise = 1
[[pool.server]]
origin = "web-01"
[[pool.server]]
origin = "web-02"
[[pool.server]]
origin = "web-03"

[[route]]
pool = "web"

[[origin]]
name = "web-01"
address = "127.0.0.1:{w1}"
demo = true
[origin.tls]
cert = "internal"
client_ca = "internal"
[[origin]]
name = "web-02"
address = "127.0.0.1:{w2}"
demo = true
[origin.tls]
cert = "internal"
client_ca = "internal"
[[origin]]
name = "web-03"
address = "127.0.0.1:{w3}"
demo = true
[origin.tls]
cert = "internal"
client_ca = "internal"
"#,
        state = a
            .state_dir
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\""),
        workers = a.workers.map(|w| format!("workers = {w}")).unwrap_or_default(),
        https = a.https_port,
        admin = a.admin_port,
        http = a.http_port,
        w1 = a.web_port,
        w2 = if a.web_port == 0 {
            0
        } else {
            a.web_port.wrapping_add(1)
        },
        w3 = if a.web_port == 0 {
            0
        } else {
            a.web_port.wrapping_add(2)
        },
    );
    let cwd = std::env::current_dir().unwrap_or_default();
    config::load_str(&toml, "<rampart up>", &cwd, &SystemEnv)
}

fn init_logging(cli: &Cli, model: &Model) {
    let filter = match (&cli.log_level, std::env::var("RUST_LOG").ok(), &model.log.level) {
        (Some(l), _, _) => EnvFilter::try_new(l),
        (None, Some(env), _) if !env.is_empty() => EnvFilter::try_new(env),
        (None, _, Some(l)) => EnvFilter::try_new(l),
        _ => EnvFilter::try_new(LOG_LEVEL),
    }
    .unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter ({e}); using `{LOG_LEVEL}`");
        EnvFilter::new(LOG_LEVEL)
    });
    let json = match cli.log_format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        Some(LogFormat::Auto) | None => model.log.json.unwrap_or(!std::io::stderr().is_terminal()),
    };
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn rampart_clock_refresh() {
    crate::clock::refresh();
}

/// Why a config would serve nothing, if it would not: no listener and
/// no origin.
fn serves_nothing(model: &Model) -> Option<String> {
    let source = model
        .source
        .as_ref()
        .map_or_else(|| "the config".to_string(), |p| p.display().to_string());
    // A fleet instance gets its configuration from etcd.
    (model.listeners.is_empty() && model.origins.is_empty() && model.fleet.is_none()).then(|| {
        format!(
            "{source} has no [[listener]] (and no [[origin]]): rampart would serve nothing; \
             add one, e.g. [[listener]] name = \"web\" address = \"0.0.0.0:80\" (docs/config.md)"
        )
    })
}

fn serve(cli: &Cli, model: Model, demo: bool) -> ExitCode {
    if let Some(why) = serves_nothing(&model) {
        eprintln!("error: {why}");
        return ExitCode::FAILURE;
    }
    init_logging(cli, &model);
    let mut builder = if model.workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(model.workers);
        b
    };
    // Each wake-up of a worker reads the clock once for the coarse clock
    // the request path uses (crate::clock).
    let rt = builder
        .enable_all()
        .on_thread_start(rampart_clock_refresh)
        .on_thread_unpark(rampart_clock_refresh)
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let app = match RunningApp::start(&model).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Signal handlers first: a signal sent as soon as `ready` is
        // printed must not find the default action (which ends the process).
        let signals = Signals::new();
        announce(&app, demo);
        // Under systemd (Type=notify): ready now that every listener is bound.
        let systemd = std::sync::Arc::new(crate::daemon::Notifier::from_env());
        systemd.ready();
        let watchdog = crate::daemon::Notifier::watchdog_interval()
            .map(|every| tokio::spawn(systemd.clone().watchdog(every)));
        signals.wait(&app.app, &systemd).await;
        systemd.stopping();
        if let Some(w) = watchdog {
            w.abort();
        }
        tracing::info!("shutting down: draining connections");
        if app.shutdown().await {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// Prints what is served, one `listening` line per socket (tests and
/// scripts read these), and for the demo the URLs to open.
fn announce(app: &RunningApp, demo: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for b in app.listeners.iter().chain(&app.origins) {
        let _ = writeln!(out, "listening {} {}", b.name, b.url());
    }
    if let Some(a) = &app.app.admin {
        let _ = writeln!(out, "listening admin {}", a.url());
    }
    if let Some(ca) = &app.local_ca {
        let _ = writeln!(out, "local CA certificate: {}", ca.display());
    }
    if demo {
        let https = app.listeners.iter().find(|l| l.scheme == "https");
        let http = app.listeners.iter().find(|l| l.scheme == "http");
        let _ = writeln!(out, "\nrampart is up.");
        if let Some(h) = https {
            let _ = writeln!(
                out,
                "  load balancer:  https://localhost:{}/  (HTTP/1.1 and HTTP/2)",
                h.addr.port()
            );
        }
        if let Some(h) = http {
            let _ = writeln!(
                out,
                "  redirect:       http://localhost:{}/  -> HTTPS (308)",
                h.addr.port()
            );
        }
        for o in &app.origins {
            let _ = writeln!(out, "  web server:     {} {}", o.name, o.url());
        }
        if let Some(a) = &app.app.admin {
            let _ = writeln!(out, "  dashboard:      {}  (live QPS, latency, servers)", a.url());
            let _ = writeln!(out, "  metrics:        {}metrics  (Prometheus)", a.url());
            let _ = writeln!(out, "  terminal view:  rampart top --admin {}", a.addr);
        }
        if let (Some(ca), Some(h)) = (&app.local_ca, https) {
            let _ = writeln!(
                out,
                "  try:            curl --cacert {} https://localhost:{}/",
                ca.display(),
                h.addr.port()
            );
        }
        let _ = writeln!(out, "Press Ctrl-C to stop.");
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

/// SIGINT, SIGTERM and SIGHUP handlers.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
    usr1: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt())
            .map_err(|e| tracing::error!("cannot watch SIGINT: {e}"))
            .ok();
        let term = signal(SignalKind::terminate())
            .map_err(|e| tracing::error!("cannot watch SIGTERM: {e}"))
            .ok();
        let hup = signal(SignalKind::hangup())
            .map_err(|e| tracing::error!("cannot watch SIGHUP: {e}"))
            .ok();
        let usr1 = signal(SignalKind::user_defined1())
            .map_err(|e| tracing::error!("cannot watch SIGUSR1: {e}"))
            .ok();
        Signals { int, term, hup, usr1 }
    }

    /// Waits for SIGINT or SIGTERM; SIGHUP reloads the config file meanwhile
    /// (telling systemd, when it watches, that a reload is under way).
    async fn wait(mut self, app: &std::sync::Arc<crate::app::App>, systemd: &crate::daemon::Notifier) {
        loop {
            tokio::select! {
                _ = recv(&mut self.int) => return,
                _ = recv(&mut self.term) => return,
                _ = recv(&mut self.usr1) => app.reopen_access_log(),
                _ = recv(&mut self.hup) => {
                    systemd.reloading();
                    // A refusal is logged by reload itself.
                    let _ = app.reload().await;
                    systemd.ready();
                }
            }
        }
    }
}

/// Waits for a signal; never returns when it could not be watched.
async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// `rampart man`: the main page on stdout, or every page into `dir`.
fn man(dir: Option<&Path>) -> ExitCode {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        return match clap_mangen::Man::new(cmd).render(&mut out) {
            Ok(()) if std::io::stdout().write_all(&out).is_ok() => ExitCode::SUCCESS,
            Ok(()) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    };
    match write_pages(&cmd, dir) {
        Ok(n) => {
            println!("{n} manual pages written to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes `cmd`'s page (named as its references name it: `rampart-ca-issue`)
/// and its subcommands' pages; how many.
fn write_pages(cmd: &clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)?;
    let mut n = 1;
    for sub in cmd.get_subcommands() {
        n += write_pages(sub, dir)?;
    }
    Ok(n)
}
