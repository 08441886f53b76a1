//! `rampart firewall render | apply | diff | stats`: the host firewalls of
//! the config's `[topology]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::firewall::nft::{self, Drift};

#[derive(Debug, Subcommand)]
pub enum FirewallCmd {
    /// Print the complete nftables ruleset of a host.
    Render {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        /// The host, by name, from [[topology.host]].
        #[arg(long)]
        host: String,
    },
    /// Check the host's ruleset with `nft -c`, then load it (replacing the
    /// `inet rampart` table atomically; the previous one is restored if loading fails).
    Apply {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        #[arg(long)]
        host: String,
    },
    /// Compare the host's ruleset as the config renders it, as last applied,
    /// and as loaded in the kernel now. Exit status 0 when all agree, 1 when
    /// they differ or the ruleset was never applied.
    Diff {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        #[arg(long)]
        host: String,
        /// Compare only the config with the last applied ruleset (no root needed).
        #[arg(long)]
        no_live: bool,
    },
    /// Print what the loaded ruleset dropped, in and out.
    Stats {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        #[arg(long)]
        host: String,
        #[arg(long, value_enum, default_value = "text")]
        format: StatsFormat,
        /// Write the Prometheus text to FILE (atomically, for node-exporter's
        /// textfile collector) instead of printing.
        #[arg(long, value_name = "FILE")]
        textfile: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    Text,
    Prometheus,
}

pub fn run(cmd: &FirewallCmd) -> ExitCode {
    let (FirewallCmd::Render { config, host }
    | FirewallCmd::Apply { config, host }
    | FirewallCmd::Diff { config, host, .. }
    | FirewallCmd::Stats { config, host, .. }) = cmd;
    let model = match super::load(config) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let Some(topology) = &model.topology else {
        eprintln!("error: {}: there is no [topology] section", config.display());
        return ExitCode::from(2);
    };
    if !topology.hosts.iter().any(|h| &h.name == host) {
        eprintln!("error: {}", nft::NftError::NoHost(host.clone()));
        return ExitCode::from(2);
    }
    let result = match cmd {
        FirewallCmd::Render { .. } => nft::render(topology, host).map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        }),
        FirewallCmd::Apply { .. } => nft::apply(topology, host, &model.state_dir).map(|file| {
            println!("applied {} to the inet rampart table", file.display());
            ExitCode::SUCCESS
        }),
        FirewallCmd::Diff { no_live, .. } => {
            nft::diff(topology, host, &model.state_dir, !no_live).map(|d| report(host, &d))
        }
        FirewallCmd::Stats { format, textfile, .. } => nft::stats().map(|drops| {
            let prom = nft::prometheus(host, &drops);
            if let Some(path) = textfile {
                return write_atomically(path, &prom);
            }
            match format {
                StatsFormat::Prometheus => print!("{prom}"),
                StatsFormat::Text => {
                    println!("host firewall of {host} (table inet rampart)");
                    for d in &drops {
                        println!(
                            "  dropped {:<3}  {:>12} packets  {:>14} bytes",
                            d.direction, d.packets, d.bytes
                        );
                    }
                }
            }
            ExitCode::SUCCESS
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

fn report(host: &str, d: &Drift) -> ExitCode {
    match d {
        Drift::Same => {
            println!("{host}: the loaded ruleset is the one the config renders");
            ExitCode::SUCCESS
        }
        Drift::NeverApplied => {
            println!("{host}: never applied (run `rampart firewall apply --host {host}`)");
            ExitCode::FAILURE
        }
        Drift::Differs { config, live } => {
            if !config.is_empty() {
                println!("{host}: the config renders a different ruleset than the one applied:");
                print!("{config}");
            }
            if !live.is_empty() {
                println!("{host}: the live table differs from the one applied:");
                print!("{live}");
            }
            ExitCode::FAILURE
        }
    }
}

fn write_atomically(path: &Path, text: &str) -> ExitCode {
    let tmp = path.with_extension("prom.tmp");
    match std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
