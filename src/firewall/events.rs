//! What the firewall turned away, for the dashboard: the last 50 events and
//! the clients blocked most often. Only rejections are recorded, so the
//! normal request path never touches this.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const RECENT: usize = 50;
const MAX_CLIENTS: usize = 10_000;

/// One rejection.
#[derive(Debug, Clone)]
pub struct Event {
    pub unix_ms: u64,
    pub client: IpAddr,
    pub rule: String,
    pub action: &'static str,
    pub what: String,
}

#[derive(Debug, Default)]
struct Inner {
    recent: VecDeque<Event>,
    blocked: HashMap<IpAddr, u64>,
}

/// Recent rejections and per-client counts.
#[derive(Debug, Default)]
pub struct Events {
    inner: Mutex<Inner>,
}

impl Events {
    pub fn record(&self, client: IpAddr, rule: &str, action: &'static str, what: &str) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.recent.len() == RECENT {
            g.recent.pop_front();
        }
        let what: String = what.chars().take(200).collect();
        g.recent.push_back(Event {
            unix_ms,
            client,
            rule: rule.to_string(),
            action,
            what,
        });
        if g.blocked.len() >= MAX_CLIENTS && !g.blocked.contains_key(&client) {
            // Keep the heavier half.
            let mut counts: Vec<u64> = g.blocked.values().copied().collect();
            counts.sort_unstable();
            let cut = counts[counts.len() / 2];
            g.blocked.retain(|_, n| *n > cut);
        }
        *g.blocked.entry(client).or_insert(0) += 1;
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Event> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.recent.iter().rev().cloned().collect()
    }

    /// The `n` clients blocked most often.
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(IpAddr, u64)> = g.blocked.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_and_top() {
        let e = Events::default();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            e.record(a, "no-admin", "deny", "GET /admin");
        }
        e.record(b, "per-ip", "rate_limit", "GET /");
        assert_eq!(e.top(1), vec![(a, 3)]);
        assert_eq!(e.recent()[0].rule, "per-ip");
        for i in 0..100 {
            e.record(b, "x", "deny", &format!("{i}"));
        }
        assert_eq!(e.recent().len(), 50);
    }
}
