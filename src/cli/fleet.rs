//! `rampart fleet push | history | diff | rollback | status`: the fleet's
//! configuration in etcd ([`crate::fleet`]). Each reads `[fleet]` from the
//! config file named with `-c` to find etcd; `push` also stores that file,
//! once it passes the checks `rampart check` makes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{self, model::FleetSettings};
use crate::fleet::{FleetError, Revision, Store};
use crate::tls::SystemEnv;

#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// Check a configuration and store it as the fleet's next revision.
    Push {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        /// Why (shown by `history`).
        #[arg(short, long, default_value = "")]
        message: String,
        /// Who (default: $USER@host).
        #[arg(long)]
        author: Option<String>,
        /// The revision this change was made from: refused when another
        /// was pushed since (default: whatever is current).
        #[arg(long, value_name = "REV")]
        expect: Option<u64>,
    },
    /// Every revision: number, time, author, hash and message.
    History {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
    },
    /// What changed from revision FROM to TO (default: the current one).
    Diff {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        from: u64,
        to: Option<u64>,
    },
    /// Store revision REV's configuration again, as the next revision.
    Rollback {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
        rev: u64,
    },
    /// The revision each node runs; exit 1 when a node is behind or refused
    /// the current one.
    Status {
        #[arg(short, long, default_value = "rampart.toml")]
        config: PathBuf,
    },
}

/// Runs a fleet command.
pub fn run(cmd: &FleetCmd) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(go(cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// What `rampart audit` reviews of a fleet: its current revision, what
/// each node reports, etcd's members.
pub fn facts(settings: &FleetSettings) -> Result<crate::audit::FleetFacts, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let e = |e: FleetError| e.to_string();
        let mut store = Store::connect(settings).await.map_err(e)?;
        let current = store.current().await.map_err(e)?.map_or(0, |(r, _)| r.revision);
        let nodes = store
            .statuses()
            .await
            .map_err(e)?
            .into_iter()
            .map(|s| crate::audit::FleetNode {
                node: s.node,
                revision: s.revision,
                refused: s.refused_revision.zip(s.error),
            })
            .collect();
        let etcd_members = store.members().await.map_err(e)?;
        Ok(crate::audit::FleetFacts {
            current,
            nodes,
            etcd_members,
        })
    })
}

fn config_of(cmd: &FleetCmd) -> &Path {
    match cmd {
        FleetCmd::Push { config, .. }
        | FleetCmd::History { config }
        | FleetCmd::Diff { config, .. }
        | FleetCmd::Rollback { config, .. }
        | FleetCmd::Status { config } => config,
    }
}

async fn go(cmd: &FleetCmd) -> Result<ExitCode, String> {
    let path = config_of(cmd);
    let model = config::load_file(path, &SystemEnv).map_err(|e| e.to_string())?;
    let settings: FleetSettings = model
        .fleet
        .clone()
        .ok_or_else(|| format!("{} has no [fleet] section: name etcd there", path.display()))?;
    let mut store = Store::connect(&settings).await.map_err(|e| e.to_string())?;
    let e = |e: FleetError| e.to_string();
    match cmd {
        FleetCmd::Push {
            message,
            author,
            expect,
            ..
        } => {
            // What `rampart check` checked above is what goes.
            let document = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let author = author.clone().unwrap_or_else(default_author);
            let r = store
                .push(&document, &author, message, *expect)
                .await
                .map_err(e)?;
            println!("pushed revision {} ({})", r.revision, &r.hash[..12]);
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::History { .. } => {
            for r in store.history().await.map_err(e)? {
                println!(
                    "{:>5}  {}  {:<20}  {}  {}",
                    r.revision,
                    date(r.time_unix),
                    r.author,
                    &r.hash[..12.min(r.hash.len())],
                    r.message
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Diff { from, to, .. } => {
            let a = store.revision(*from).await.map_err(e)?;
            let b = match to {
                Some(t) => store.revision(*t).await.map_err(e)?,
                None => store
                    .current()
                    .await
                    .map_err(e)?
                    .map(|(r, _)| r)
                    .ok_or("the fleet has no revision yet")?,
            };
            print!("{}", diff(&a, &b));
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Rollback { rev, .. } => {
            let old = store.revision(*rev).await.map_err(e)?;
            let current = store.current().await.map_err(e)?.map_or(0, |(r, _)| r.revision);
            let msg = format!("rollback to revision {rev}");
            let r = store
                .push(&old.document, &default_author(), &msg, Some(current))
                .await
                .map_err(e)?;
            println!(
                "pushed revision {} (the configuration of revision {rev})",
                r.revision
            );
            Ok(ExitCode::SUCCESS)
        }
        FleetCmd::Status { .. } => {
            let current = store.current().await.map_err(e)?.map_or(0, |(r, _)| r.revision);
            let statuses = store.statuses().await.map_err(e)?;
            let mut behind = 0;
            println!("current revision: {current}");
            for s in &statuses {
                let state = match (&s.error, s.refused_revision) {
                    (Some(err), Some(r)) if r == current => {
                        behind += 1;
                        format!("REFUSED revision {r}: {err}")
                    }
                    _ if s.revision == current => "current".to_string(),
                    _ => {
                        behind += 1;
                        "BEHIND".to_string()
                    }
                };
                println!(
                    "{:<20} revision {:>5}  {}  {state}",
                    s.node,
                    s.revision,
                    date(s.time_unix)
                );
            }
            if statuses.is_empty() {
                println!("no node has reported yet");
            }
            Ok(if behind == 0 && !statuses.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn default_author() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

fn date(unix: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

/// A unified diff of two revisions' documents.
fn diff(a: &Revision, b: &Revision) -> String {
    similar::TextDiff::from_lines(&a.document, &b.document)
        .unified_diff()
        .header(
            &format!("revision {}", a.revision),
            &format!("revision {}", b.revision),
        )
        .to_string()
}
