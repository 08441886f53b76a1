//! What the firewall turned away, for the dashboard: the most recent
//! events and the clients blocked most often. Only refusals are recorded,
//! so the normal request path never touches this.
//!
//! Refusals come in floods, so recording one takes no shared lock and
//! allocates nothing: each worker thread writes to a shard of its own (a
//! mutex no other thread takes, but the reader's once a second), the
//! event's text kept inline and cut to length. Each shard keeps its last
//! [`RECENT`] events, at most [`PER_SECOND`] new ones a second (the rest are
//! only counted, in [`Events::dropped`]), and the counts of at most
//! [`MAX_CLIENTS`] clients (past that, the lighter half is forgotten).

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Events kept per shard (and shown).
pub const RECENT: usize = 50;
/// Events recorded per shard and second; more are counted, not kept.
pub const PER_SECOND: u32 = 200;
/// Clients counted per shard.
pub const MAX_CLIENTS: usize = 4096;
/// Shards: more than there are worker threads, so that each has its own.
const SHARDS: usize = 16;

/// One refusal, as read back.
#[derive(Debug, Clone)]
pub struct Event {
    pub unix_ms: u64,
    pub client: IpAddr,
    pub rule: String,
    pub action: &'static str,
    pub what: String,
}

/// Text kept inline, cut at a character boundary.
#[derive(Clone, Copy)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    fn new(s: &str) -> Self {
        let mut t = Inline {
            len: 0,
            bytes: [0u8; N],
        };
        let _ = std::fmt::Write::write_str(&mut t, s);
        t
    }

    /// Formats `v` into the inline text (what does not fit is cut).
    fn of(v: impl std::fmt::Display) -> Self {
        let mut t = Inline {
            len: 0,
            bytes: [0u8; N],
        };
        let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{v}"));
        t
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl<const N: usize> std::fmt::Write for Inline<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let cap = N.min(usize::from(u8::MAX));
        let at = usize::from(self.len);
        let mut end = s.len().min(cap.saturating_sub(at));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes[at..at + end].copy_from_slice(&s.as_bytes()[..end]);
        self.len += end as u8;
        if end < s.len() {
            return Err(std::fmt::Error);
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Slot {
    unix_ms: u64,
    /// Order within the shard (events of one millisecond).
    seq: u64,
    client: IpAddr,
    rule: Inline<48>,
    action: &'static str,
    what: Inline<160>,
}

#[derive(Default)]
struct Shard {
    /// A ring of the last [`RECENT`] events; `next` is where the next goes.
    ring: Vec<Slot>,
    next: usize,
    seq: u64,
    /// The second (Unix) being counted, and events kept in it.
    second: u64,
    kept: u32,
    blocked: HashMap<IpAddr, u64>,
}

/// Recent refusals and per-client counts, sharded by worker thread.
pub struct Events {
    shards: [Mutex<Shard>; SHARDS],
    /// Events not kept because a shard's rate was reached.
    pub dropped: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            shards: std::array::from_fn(|_| Mutex::default()),
            dropped: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("dropped", &self.dropped.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// This thread's shard.
fn shard_index() -> usize {
    static THREADS: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = Cell::new(THREADS.fetch_add(1, Relaxed) % SHARDS);
    }
    INDEX.with(Cell::get)
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Events {
    /// Records a refusal of `client` by `rule` (`action`: what was done),
    /// `what` describing the request or connection (formatted only if the
    /// event is kept).
    pub fn record(&self, client: IpAddr, rule: &str, action: &'static str, what: impl std::fmt::Display) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut s = lock(&self.shards[shard_index()]);
        count(&mut s.blocked, client);
        let second = unix_ms / 1000;
        if s.second != second {
            s.second = second;
            s.kept = 0;
        }
        if s.kept >= PER_SECOND {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        s.kept += 1;
        s.seq += 1;
        let slot = Slot {
            unix_ms,
            seq: s.seq,
            client,
            rule: Inline::new(rule),
            action,
            what: Inline::of(what),
        };
        if s.ring.len() < RECENT {
            s.ring.push(slot);
        } else {
            let at = s.next;
            s.ring[at] = slot;
        }
        s.next = (s.next + 1) % RECENT;
    }

    /// The most recent [`RECENT`] events, newest first.
    pub fn recent(&self) -> Vec<Event> {
        let mut all: Vec<Slot> = Vec::new();
        for shard in &self.shards {
            all.extend_from_slice(&lock(shard).ring);
        }
        all.sort_by_key(|s| std::cmp::Reverse((s.unix_ms, s.seq)));
        all.truncate(RECENT);
        all.into_iter()
            .map(|s| Event {
                unix_ms: s.unix_ms,
                client: s.client,
                rule: s.rule.as_str().to_string(),
                action: s.action,
                what: s.what.as_str().to_string(),
            })
            .collect()
    }

    /// The `n` clients blocked most often.
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut merged: HashMap<IpAddr, u64> = HashMap::new();
        for shard in &self.shards {
            for (ip, c) in &lock(shard).blocked {
                *merged.entry(*ip).or_insert(0) += c;
            }
        }
        let mut v: Vec<(IpAddr, u64)> = merged.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// Counts one more refusal of `client`, keeping at most [`MAX_CLIENTS`].
fn count(blocked: &mut HashMap<IpAddr, u64>, client: IpAddr) {
    if let Some(n) = blocked.get_mut(&client) {
        *n += 1;
        return;
    }
    if blocked.len() >= MAX_CLIENTS {
        // Keep the heavier half.
        let mut counts: Vec<u64> = blocked.values().copied().collect();
        counts.sort_unstable();
        let cut = counts[counts.len() / 2];
        blocked.retain(|_, n| *n > cut);
    }
    blocked.insert(client, 1);
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
        assert_eq!(e.recent()[0].client, b);
        assert_eq!(e.recent().len(), 4);
        for i in 0..100 {
            e.record(b, "x", "deny", i);
        }
        assert_eq!(e.recent().len(), RECENT);
    }

    #[test]
    fn a_flood_keeps_a_bounded_number_of_events_and_clients() {
        let e = Events::default();
        let long = "é".repeat(500);
        for i in 0..(PER_SECOND + 1000) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            e.record(ip, &long, "close", &long);
        }
        let recent = e.recent();
        assert_eq!(recent.len(), RECENT);
        assert!(recent
            .iter()
            .all(|ev| ev.what.len() <= 160 && ev.what.chars().all(|c| c == 'é')));
        // Most of the flood fell in one second: only counted. (Two seconds
        // at most can pass in this loop.)
        assert!(e.dropped.load(Relaxed) >= 1000 - u64::from(PER_SECOND));
        assert!(e.top(usize::MAX).len() <= MAX_CLIENTS);
    }

    #[test]
    fn each_thread_writes_its_own_shard() {
        let e = std::sync::Arc::new(Events::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let e = e.clone();
                std::thread::spawn(move || {
                    let ip = IpAddr::from(std::net::Ipv4Addr::new(192, 0, 2, t));
                    for _ in 0..10 {
                        e.record(ip, "r", "deny", "GET /");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let top = e.top(10);
        assert_eq!(top.len(), 4);
        assert!(top.iter().all(|(_, n)| *n == 10));
    }
}
