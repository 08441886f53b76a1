//! The last revision an instance applied, kept in its `state_dir`
//! (`fleet-revision.json`, written atomically) so that it starts from it
//! when etcd cannot be reached.

use std::path::{Path, PathBuf};

use super::Revision;

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("fleet-revision.json")
}

/// The revision kept, if any (one that cannot be read is reported and
/// ignored: the local config serves then).
pub fn load(state_dir: &Path) -> Option<Revision> {
    let p = path(state_dir);
    let bytes = std::fs::read(&p).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(file = %p.display(), "the kept fleet revision cannot be read, ignored: {e}");
            None
        }
    }
}

/// Keeps `r` (replacing the file durably).
pub fn save(state_dir: &Path, r: &Revision) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    crate::units::write_durably(&path(state_dir), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_revision_loads_back() {
        let dir = std::env::temp_dir().join(format!("rampart-fleet-cache-{}", std::process::id()));
        let r = Revision {
            revision: 7,
            hash: "h".into(),
            author: "a".into(),
            time_unix: 1,
            message: "m".into(),
            document: "[[listener]]\n".into(),
        };
        save(&dir, &r).expect("save");
        assert_eq!(load(&dir), Some(r));
        std::fs::write(path(&dir), b"{not json").expect("write");
        assert_eq!(load(&dir), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
