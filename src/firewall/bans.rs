//! Automatic bans: a client that collects too many violations (firewall
//! denials, including connections refused by a listener's allow/deny
//! lists, rate limiting, malformed requests) within a window is refused
//! at accept for a while. Bans can also be listed, added and lifted
//! through the admin API; they live with the process, across reloads.
//! With an outbox ([`Bans::share_through`]), every ban and lift made here is
//! also sent out (the cluster module shares it with the other instances),
//! and bans they made arrive through [`Bans::apply`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::config::model::BanPolicy;

/// A ban made or lifted, to share with other instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanNote {
    Banned {
        address: IpAddr,
        duration: Duration,
        reason: String,
    },
    Lifted {
        address: IpAddr,
    },
}

/// A ban in force.
#[derive(Debug, Clone)]
pub struct Ban {
    pub address: IpAddr,
    pub remaining: Duration,
    pub reason: String,
}

/// Bans in force: until when, and why.
type BanMap = HashMap<IpAddr, (Instant, Arc<str>)>;

/// Strike counts of one shard of the clients: when the window began, how
/// many so far.
type Strikes = HashMap<IpAddr, (Instant, u32)>;

/// Strike shards: a flood of refusals from many clients spreads over them.
const SHARDS: usize = 16;

/// The ban list and the strike counts.
///
/// Every new connection asks whether its client is banned, so that read
/// takes no lock: the list is an immutable map swapped whole
/// (`arc-swap`) when a ban is made or lifted, which is rare next to the
/// reads. Strikes are counted in shards by client address, each under a
/// lock of its own.
#[derive(Debug)]
pub struct Bans {
    /// Bans in force, as readers see them.
    banned: ArcSwap<BanMap>,
    /// Writers of `banned`, one at a time.
    write: Mutex<()>,
    strikes: [Mutex<Strikes>; SHARDS],
    /// The automatic policy, if any (checked before any lock: refusals at
    /// accept count too, and can come in floods).
    policy: ArcSwapOption<BanPolicy>,
    /// Bans in force (a cheap check before the map).
    active: AtomicUsize,
    /// Bans made here (automatic and by hand), not those applied from
    /// other instances: summed over a fleet, each ban counts once.
    pub total: AtomicU64,
    pub refused: AtomicU64,
    /// Where bans made here go to be shared (full: dropped, logged); set
    /// once, when the cluster starts.
    outbox: std::sync::OnceLock<tokio::sync::mpsc::Sender<BanNote>>,
}

impl Default for Bans {
    fn default() -> Self {
        Bans {
            banned: ArcSwap::default(),
            write: Mutex::new(()),
            strikes: std::array::from_fn(|_| Mutex::default()),
            policy: ArcSwapOption::empty(),
            active: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            outbox: std::sync::OnceLock::new(),
        }
    }
}

/// More strike entries than this in a shard and the stale ones are dropped.
const MAX_STRIKES: usize = 100_000 / SHARDS;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Bans {
    /// Sets (or clears) the automatic policy; bans in force stay.
    pub fn configure(&self, policy: Option<BanPolicy>) {
        self.policy.store(policy.map(Arc::new));
    }

    /// Is `ip` banned now? Counts a refusal when it is. No lock.
    pub fn refuses(&self, ip: IpAddr) -> bool {
        if self.active.load(Relaxed) == 0 {
            return false;
        }
        let expired = match self.banned.load().get(&ip) {
            None => return false,
            Some((until, _)) => *until <= Instant::now(),
        };
        if expired {
            // Rare: once per expired ban met, and only one writer at a time.
            self.change(|m| {
                m.retain(|_, (until, _)| *until > Instant::now());
            });
            return false;
        }
        self.refused.fetch_add(1, Relaxed);
        true
    }

    /// Counts a violation by `ip`; bans it when the policy says so.
    pub fn violation(&self, ip: IpAddr, what: &str) {
        let Some(p) = self.policy.load_full() else {
            return;
        };
        let shard =
            &self.strikes[crate::hash::hash64(crate::hash::SEED_KEY, &ip_bytes(ip)) as usize % SHARDS];
        let now = Instant::now();
        {
            let mut st = lock(shard);
            if st.len() > MAX_STRIKES {
                st.retain(|_, (start, _)| now.duration_since(*start) < p.window);
            }
            let e = st.entry(ip).or_insert((now, 0));
            if now.duration_since(e.0) >= p.window {
                *e = (now, 0);
            }
            e.1 += 1;
            if e.1 < p.after {
                return;
            }
            st.remove(&ip);
        }
        let reason = format!("{} violations within {:?} (last: {what})", p.after, p.window);
        tracing::warn!(client = %ip, for_ = ?p.duration, "client banned: {reason}");
        self.insert(ip, p.duration, reason.clone());
        self.total.fetch_add(1, Relaxed);
        self.send(BanNote::Banned {
            address: ip,
            duration: p.duration,
            reason,
        });
    }

    /// Bans `ip` by hand.
    pub fn ban(&self, ip: IpAddr, duration: Duration, reason: String) {
        self.insert(ip, duration, reason.clone());
        self.total.fetch_add(1, Relaxed);
        self.send(BanNote::Banned {
            address: ip,
            duration,
            reason,
        });
    }

    /// Publishes a new list made from the current one by `f`.
    fn change(&self, f: impl FnOnce(&mut BanMap)) {
        let _one = lock(&self.write);
        let mut m = BanMap::clone(&self.banned.load());
        f(&mut m);
        self.active.store(m.len(), Relaxed);
        self.banned.store(Arc::new(m));
    }

    fn insert(&self, ip: IpAddr, duration: Duration, reason: String) {
        let until = Instant::now() + duration;
        self.change(|m| {
            m.insert(ip, (until, Arc::from(reason)));
        });
    }

    /// Lifts a ban; says whether there was one.
    pub fn lift(&self, ip: IpAddr) -> bool {
        let had = self.remove(ip);
        self.send(BanNote::Lifted { address: ip });
        had
    }

    fn remove(&self, ip: IpAddr) -> bool {
        let mut had = false;
        self.change(|m| had = m.remove(&ip).is_some());
        for shard in &self.strikes {
            lock(shard).remove(&ip);
        }
        had
    }

    /// From now on, bans and lifts made here are also sent to `tx` (the
    /// first outbox given stays: the cluster starts once per process).
    pub fn share_through(&self, tx: tokio::sync::mpsc::Sender<BanNote>) {
        let _ = self.outbox.set(tx);
    }

    /// Applies a ban or lift another instance made (not sent out again).
    pub fn apply(&self, note: BanNote) {
        match note {
            BanNote::Banned {
                address,
                duration,
                reason,
            } => self.insert(address, duration, reason),
            BanNote::Lifted { address } => {
                self.remove(address);
            }
        }
    }

    fn send(&self, note: BanNote) {
        if let Some(tx) = self.outbox.get() {
            if tx.try_send(note).is_err() {
                tracing::warn!("too many bans waiting to be shared: one stays local");
            }
        }
    }

    /// Bans in force (those that ran out are dropped on the way).
    pub fn list(&self) -> Vec<Ban> {
        let now = Instant::now();
        if self.banned.load().values().any(|(until, _)| *until <= now) {
            self.change(|m| m.retain(|_, (until, _)| *until > now));
        }
        let m = self.banned.load();
        let mut out: Vec<Ban> = m
            .iter()
            .filter(|(_, (until, _))| *until > now)
            .map(|(ip, (until, reason))| Ban {
                address: *ip,
                remaining: until.duration_since(now),
                reason: reason.to_string(),
            })
            .collect();
        out.sort_by_key(|b| b.address);
        out
    }

    pub fn active(&self) -> usize {
        self.active.load(Relaxed)
    }
}

/// The address as bytes, for the shard's hash.
fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_a_ban_and_bans_can_be_lifted() {
        let b = Bans::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        b.violation(ip, "deny");
        assert!(!b.refuses(ip), "no policy: no ban");
        b.configure(Some(BanPolicy {
            after: 3,
            window: Duration::from_secs(60),
            duration: Duration::from_secs(600),
        }));
        b.violation(ip, "deny");
        b.violation(ip, "deny");
        assert!(!b.refuses(ip));
        b.violation(ip, "429");
        assert!(b.refuses(ip));
        assert_eq!(b.list().len(), 1);
        assert!(b.list()[0].reason.contains("last: 429"));
        assert!(b.lift(ip));
        assert!(!b.refuses(ip));
        let other: IpAddr = "2001:db8::1".parse().expect("ip");
        b.ban(other, Duration::from_millis(0), "by hand".into());
        assert!(!b.refuses(other), "an expired ban no longer refuses");
    }
}
