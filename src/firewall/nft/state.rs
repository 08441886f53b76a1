//! The host's live firewall: loading a ruleset (`apply`), comparing what is
//! loaded with what the config renders (`diff`), and reading the drop
//! counters (`stats`). `apply` keeps, in `STATE_DIR/nft/`, the ruleset it
//! loaded (`HOST.applied.nft`) and the table as nft listed it right after
//! (`HOST.live.nft`), which `diff` compares against later.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::render::{render, COUNTERS};
use super::NftError;
use crate::config::model::Topology;

fn nft(args: &[&str]) -> Result<std::process::Output, NftError> {
    Command::new("nft").args(args).output().map_err(NftError::Run)
}

fn werr(path: &Path) -> impl FnOnce(std::io::Error) -> NftError {
    let path = path.display().to_string();
    move |source| NftError::Write { path, source }
}

/// Where `apply` keeps `host`'s ruleset (loaded from there once it
/// passed) and the table as nft listed it right after loading.
fn files(state_dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let dir = state_dir.join("nft");
    (
        dir.join(format!("{host}.applied.nft")),
        dir.join(format!("{host}.live.nft")),
    )
}

/// `nft -s list table inet rampart` (no counter values), or why not.
fn live_table() -> Result<Option<String>, NftError> {
    let out = nft(&["-s", "list", "table", "inet", "rampart"])?;
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("No such file or directory") {
        return Ok(None);
    }
    Err(NftError::Refused {
        step: "list",
        stderr: err.trim().to_string(),
    })
}

/// Checks and loads `host`'s ruleset; keeps the previous `inet rampart`
/// table in `state_dir` and restores it if loading fails. Returns the path
/// of the file loaded, kept as `HOST.applied.nft`.
pub fn apply(topology: &Topology, host: &str, state_dir: &Path) -> Result<PathBuf, NftError> {
    let rules = render(topology, host)?;
    let (applied, live) = files(state_dir, host);
    let dir = state_dir.join("nft");
    std::fs::create_dir_all(&dir).map_err(werr(&dir))?;
    // Written beside the applied one, renamed over it once loaded: a
    // refused ruleset never counts as applied.
    let file = dir.join(format!("{host}.next.nft"));
    std::fs::write(&file, &rules).map_err(werr(&file))?;
    let f = file.to_string_lossy().to_string();
    let check = nft(&["-c", "-f", &f])?;
    if !check.status.success() {
        return Err(NftError::Refused {
            step: "check",
            stderr: String::from_utf8_lossy(&check.stderr).trim().to_string(),
        });
    }
    // Keep what is there now, to roll back to (rules only: the counters
    // start again from zero either way).
    let rollback = match live_table()? {
        Some(previous) => {
            let path = dir.join(format!("{host}.previous.nft"));
            let text = format!("table inet rampart\ndelete table inet rampart\n{previous}");
            std::fs::write(&path, text).map_err(werr(&path))?;
            Some(path)
        }
        None => None,
    };
    let load = nft(&["-f", &f])?;
    if !load.status.success() {
        let stderr = String::from_utf8_lossy(&load.stderr).trim().to_string();
        if let Some(path) = rollback {
            let _ = nft(&["-f", &path.to_string_lossy()]);
        }
        return Err(NftError::Refused { step: "load", stderr });
    }
    std::fs::rename(&file, &applied).map_err(werr(&applied))?;
    // Loaded: a table that cannot be listed now leaves no record of it,
    // and `live_drift` says so, rather than failing the apply.
    match live_table() {
        Ok(Some(listed)) => std::fs::write(&live, listed).map_err(werr(&live))?,
        Ok(None) | Err(_) => {
            let _ = std::fs::remove_file(&live);
        }
    }
    Ok(applied)
}

/// How the host's firewall compares with the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// `rampart firewall apply` never ran for this host with this state directory.
    NeverApplied,
    /// The config renders what was applied, and the live table is as loaded.
    Same,
    /// Unified diffs: `config` between the applied and the rendered ruleset
    /// (the config changed since), `live` between the table as loaded and
    /// as it is now (changed by hand, or flushed).
    Differs { config: String, live: String },
}

fn unified(a: &str, b: &str, from: &str, to: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header(from, to)
        .to_string()
}

/// Compares the rendered, the applied and the live ruleset of `host`.
/// `live = false` skips reading the kernel's table (no root needed).
pub fn diff(topology: &Topology, host: &str, state_dir: &Path, live: bool) -> Result<Drift, NftError> {
    let Some(config) = config_drift(topology, host, state_dir)? else {
        return Ok(Drift::NeverApplied);
    };
    let live = if live {
        live_drift(host, state_dir)?
    } else {
        String::new()
    };
    Ok(if config.is_empty() && live.is_empty() {
        Drift::Same
    } else {
        Drift::Differs { config, live }
    })
}

/// How the ruleset the config renders for `host` differs from the one
/// `apply` last loaded (empty: not at all); None when it never ran.
pub fn config_drift(topology: &Topology, host: &str, state_dir: &Path) -> Result<Option<String>, NftError> {
    let (applied_file, _) = files(state_dir, host);
    let applied = match std::fs::read_to_string(&applied_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NftError::Read {
                path: applied_file.display().to_string(),
                source,
            })
        }
    };
    let rendered = render(topology, host)?;
    Ok(Some(if applied == rendered {
        String::new()
    } else {
        unified(&applied, &rendered, "applied", "rendered from the config")
    }))
}

/// How the kernel's `inet rampart` table differs from the one `apply`
/// loaded for `host` (empty: not at all). Needs root.
pub fn live_drift(host: &str, state_dir: &Path) -> Result<String, NftError> {
    let (_, live_file) = files(state_dir, host);
    let loaded = match std::fs::read_to_string(&live_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(format!(
                "no record of the table as loaded ({} is missing): apply again to compare\n",
                live_file.display()
            ))
        }
        Err(source) => {
            return Err(NftError::Read {
                path: live_file.display().to_string(),
                source,
            })
        }
    };
    Ok(match live_table()? {
        Some(now) if now == loaded => String::new(),
        Some(now) => unified(&loaded, &now, "as loaded", "live now"),
        None => "the table inet rampart is not loaded (flushed, or the host restarted without it)\n".into(),
    })
}

/// One drop counter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// `in` or `out`.
    pub direction: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

/// Reads the drop counters of the loaded `inet rampart` table.
pub fn stats() -> Result<Vec<Dropped>, NftError> {
    let out = nft(&["-j", "list", "counters", "table", "inet", "rampart"])?;
    if !out.status.success() {
        return Err(NftError::Refused {
            step: "list counters",
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| NftError::Refused {
        step: "list counters",
        stderr: format!("unreadable JSON: {e}"),
    })?;
    let items = doc["nftables"].as_array().cloned().unwrap_or_default();
    let mut v = Vec::new();
    for (name, direction) in COUNTERS {
        let c = items
            .iter()
            .map(|i| &i["counter"])
            .find(|c| c["name"] == name && c["table"] == "rampart");
        if let Some(c) = c {
            v.push(Dropped {
                direction,
                packets: c["packets"].as_u64().unwrap_or(0),
                bytes: c["bytes"].as_u64().unwrap_or(0),
            });
        }
    }
    if v.is_empty() {
        return Err(NftError::Refused {
            step: "list counters",
            stderr: "the table has no drop counters: apply a ruleset rendered by this rampart".into(),
        });
    }
    Ok(v)
}

/// The counters in Prometheus text format, for node-exporter's textfile collector.
pub fn prometheus(host: &str, drops: &[Dropped]) -> String {
    let mut o = String::new();
    for (metric, help, get) in [
        (
            "rampart_host_firewall_dropped_packets_total",
            "Packets the host firewall dropped.",
            (|d: &Dropped| d.packets) as fn(&Dropped) -> u64,
        ),
        (
            "rampart_host_firewall_dropped_bytes_total",
            "Bytes the host firewall dropped.",
            |d: &Dropped| d.bytes,
        ),
    ] {
        o.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} counter\n"));
        for d in drops {
            let host = host.replace(['\\', '"'], "_");
            o.push_str(&format!(
                "{metric}{{host=\"{host}\",direction=\"{}\"}} {}\n",
                d.direction,
                get(d)
            ));
        }
    }
    o
}
