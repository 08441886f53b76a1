//! Runtime changes made through the admin API (servers added, weights set,
//! servers drained, undrained or removed), kept in `state_dir/runtime-changes.json` so
//! that they survive reloads and restarts.
//!
//! The file is written atomically (temporary file, fsync, rename, fsync of
//! the folder). A file that cannot be parsed is moved aside and reported,
//! never silently dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::model::{self, Model};

/// A server added at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedServer {
    pub pool: String,
    pub name: String,
    pub address: SocketAddr,
    pub weight: u32,
    #[serde(default)]
    pub max_requests: u32,
}

/// Every runtime change, by pool and server name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    #[serde(default)]
    pub added: Vec<AddedServer>,
    /// pool → server → weight
    #[serde(default)]
    pub weights: BTreeMap<String, BTreeMap<String, u32>>,
    /// pool → servers drained (no new requests)
    #[serde(default)]
    pub drained: BTreeMap<String, BTreeSet<String>>,
    /// pool → servers of the config file removed (a server added through
    /// the API under the same name later takes the place of the file's)
    #[serde(default)]
    pub removed: BTreeMap<String, BTreeSet<String>>,
}

/// Where runtime changes live in a state directory.
pub fn state_file(state_dir: &Path) -> PathBuf {
    state_dir.join("runtime-changes.json")
}

impl Changes {
    /// Reads the state file. A missing file is no changes; an unreadable or
    /// corrupt one is moved aside and the reason returned with no changes.
    pub fn load(path: &Path) -> (Changes, Option<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Changes::default(), None),
            Err(e) => {
                return (
                    Changes::default(),
                    Some(format!("{}: cannot read: {e}", path.display())),
                )
            }
        };
        match serde_json::from_str(&text) {
            Ok(c) => (c, None),
            Err(e) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = path.with_extension(format!("json.corrupt-{stamp}"));
                let moved = std::fs::rename(path, &aside);
                let what = match moved {
                    Ok(()) => format!("moved aside to {}", aside.display()),
                    Err(m) => format!("could not be moved aside: {m}"),
                };
                (
                    Changes::default(),
                    Some(format!("{}: corrupt runtime state ({e}); {what}", path.display())),
                )
            }
        }
    }

    /// Writes the state file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::units::write_durably(path, &data)
    }

    /// Applies the changes to a freshly loaded model. Changes that name a
    /// pool the model no longer has are skipped and returned as warnings.
    ///
    /// Removals apply first, then additions: a server of the config file
    /// that was removed and then added again through the API is in both
    /// lists, and the added one (with its own address) takes its place.
    pub fn apply(&self, m: &mut Model) -> Vec<String> {
        let mut warnings = Vec::new();
        for (pool, names) in &self.removed {
            if let Some(p) = m.pools.iter_mut().find(|p| &p.name == pool) {
                p.servers.retain(|s| !names.contains(&s.name));
            }
        }
        for a in &self.added {
            let Some(p) = m.pools.iter_mut().find(|p| p.name == a.pool) else {
                warnings.push(format!(
                    "runtime change: pool `{}` of added server `{}` is gone",
                    a.pool, a.name
                ));
                continue;
            };
            let server = model::Server {
                name: a.name.clone(),
                addr: a.address,
                origin: None,
                weight: a.weight,
                max_requests: a.max_requests,
                // With the pool's TLS: its certificate is checked for its IP.
                tls_name: a.address.ip().to_string(),
            };
            // A name the file also has (a state file from before removals
            // were kept for re-added servers): the later API change wins.
            match p.servers.iter_mut().find(|s| s.name == a.name) {
                Some(s) => *s = server,
                None => p.servers.push(server),
            }
        }
        for (pool, ws) in &self.weights {
            if let Some(p) = m.pools.iter_mut().find(|p| &p.name == pool) {
                for s in p.servers.iter_mut() {
                    if let Some(w) = ws.get(&s.name) {
                        s.weight = *w;
                    }
                }
            }
        }
        warnings
    }

    pub fn is_drained(&self, pool: &str, server: &str) -> bool {
        self.drained.get(pool).is_some_and(|s| s.contains(server))
    }

    /// Forgets everything about one server (before it is added again, or
    /// once it is removed).
    pub fn forget(&mut self, pool: &str, server: &str) {
        self.added.retain(|a| !(a.pool == pool && a.name == server));
        if let Some(w) = self.weights.get_mut(pool) {
            w.remove(server);
        }
        self.undrain(pool, server);
        self.weights.retain(|_, w| !w.is_empty());
    }

    /// Records that the config file's server `server` of `pool` is removed.
    pub fn mark_removed(&mut self, pool: &str, server: &str) {
        self.removed
            .entry(pool.to_string())
            .or_default()
            .insert(server.to_string());
    }

    /// Forgets a drain; returns whether the server was drained.
    pub fn undrain(&mut self, pool: &str, server: &str) -> bool {
        let was = self.drained.get_mut(pool).is_some_and(|d| d.remove(server));
        self.drained.retain(|_, d| !d.is_empty());
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_file(dir.path());
        let mut c = Changes::default();
        c.added.push(AddedServer {
            pool: "web".into(),
            name: "web-9".into(),
            address: "127.0.0.1:9".parse().expect("addr"),
            weight: 2,
            max_requests: 0,
        });
        c.weights
            .entry("web".into())
            .or_default()
            .insert("web-1".into(), 5);
        c.save(&path).expect("save");
        let (back, warn) = Changes::load(&path);
        assert_eq!(back, c);
        assert!(warn.is_none());

        std::fs::write(&path, "{ not json").expect("write");
        let (back, warn) = Changes::load(&path);
        assert_eq!(back, Changes::default());
        let warn = warn.expect("a corrupt file is reported");
        assert!(warn.contains("corrupt runtime state"), "{warn}");
        assert!(!path.exists(), "the corrupt file was moved aside");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .collect();
        assert_eq!(aside.len(), 1);
    }
}
