//! What an operator looks back on: the last failing requests (5xx, with
//! where they went and how long they took) and the last changes made to
//! the running state (drains, weights, servers added and removed,
//! reloads). Both are short rings behind a mutex; a request that succeeds
//! never touches them.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many failing requests are kept.
pub const FAILURES_KEPT: usize = 50;
/// How many changes are kept.
pub const CHANGES_KEPT: usize = 100;

/// A request answered with a 5xx status.
#[derive(Debug, Clone)]
pub struct Failure {
    pub unix_ms: u64,
    pub listener: String,
    pub client: IpAddr,
    pub method: String,
    pub host: String,
    pub path: String,
    /// The last server tried; None when none was.
    pub server: Option<String>,
    pub status: u16,
    pub duration: Duration,
    pub request_id: String,
    /// What went wrong, as the access log names it (`connect_failed`, ...).
    pub error: Option<&'static str>,
}

/// A change to the running state.
#[derive(Debug, Clone)]
pub struct Change {
    pub unix_ms: u64,
    /// `drain`, `undrain`, `weight`, `add`, `remove`, `reload` or `reload_refused`.
    pub kind: &'static str,
    /// What it was made to: `pool/server`, or the config file.
    pub target: String,
    /// The new weight, what a reload changed, or why it was refused.
    pub detail: String,
}

/// The two rings.
#[derive(Debug, Default)]
pub struct Journal {
    failures: Mutex<VecDeque<Failure>>,
    changes: Mutex<VecDeque<Change>>,
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn push<T>(ring: &Mutex<VecDeque<T>>, kept: usize, item: T) {
    let mut r = ring.lock().unwrap_or_else(|p| p.into_inner());
    if r.len() == kept {
        r.pop_front();
    }
    r.push_back(item);
}

impl Journal {
    pub fn failed(&self, f: Failure) {
        push(&self.failures, FAILURES_KEPT, f);
    }

    /// Records a change made now.
    pub fn changed(&self, kind: &'static str, target: impl Into<String>, detail: impl Into<String>) {
        let c = Change {
            unix_ms: unix_ms(),
            kind,
            target: target.into(),
            detail: detail.into(),
        };
        push(&self.changes, CHANGES_KEPT, c);
    }

    /// Failing requests, newest first.
    pub fn failures(&self) -> Vec<Failure> {
        let r = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        r.iter().rev().cloned().collect()
    }

    /// Changes, oldest first.
    pub fn changes(&self) -> Vec<Change> {
        let r = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        r.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_keep_the_newest() {
        let j = Journal::default();
        for i in 0..(CHANGES_KEPT + 5) {
            j.changed("weight", "web/a", i.to_string());
        }
        let c = j.changes();
        assert_eq!(c.len(), CHANGES_KEPT);
        assert_eq!(c[0].detail, "5");
        assert_eq!(c[CHANGES_KEPT - 1].detail, (CHANGES_KEPT + 4).to_string());
        for i in 0..(FAILURES_KEPT + 1) {
            j.failed(Failure {
                unix_ms: i as u64,
                listener: "web".into(),
                client: IpAddr::from([127, 0, 0, 1]),
                method: "GET".into(),
                host: "h".into(),
                path: "/".into(),
                server: None,
                status: 502,
                duration: Duration::ZERO,
                request_id: String::new(),
                error: None,
            });
        }
        let f = j.failures();
        assert_eq!(f.len(), FAILURES_KEPT);
        assert_eq!(f[0].unix_ms, FAILURES_KEPT as u64, "newest first");
    }
}
