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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

#[derive(Debug, Default)]
struct State {
    banned: HashMap<IpAddr, (Instant, String)>,
    strikes: HashMap<IpAddr, (Instant, u32)>,
    policy: Option<BanPolicy>,
}

/// The ban list and the strike counts.
#[derive(Debug, Default)]
pub struct Bans {
    state: Mutex<State>,
    /// Bans in force (a cheap check before taking the lock).
    active: AtomicUsize,
    /// Whether a policy counts violations (a cheap check before the lock:
    /// refusals at accept count too, and can come in floods).
    counting: AtomicBool,
    /// Bans made here (automatic and by hand), not those applied from
    /// other instances: summed over a fleet, each ban counts once.
    pub total: AtomicU64,
    pub refused: AtomicU64,
    /// Where bans made here go to be shared (full: dropped, logged); set
    /// once, when the cluster starts.
    outbox: std::sync::OnceLock<tokio::sync::mpsc::Sender<BanNote>>,
}

/// More strike entries than this and the stale ones are dropped.
const MAX_STRIKES: usize = 100_000;

impl Bans {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or clears) the automatic policy; bans in force stay.
    pub fn configure(&self, policy: Option<BanPolicy>) {
        let mut st = self.lock();
        st.policy = policy;
        self.counting.store(policy.is_some(), Relaxed);
    }

    /// Is `ip` banned now? Counts a refusal when it is.
    pub fn refuses(&self, ip: IpAddr) -> bool {
        if self.active.load(Relaxed) == 0 {
            return false;
        }
        let mut st = self.lock();
        match st.banned.get(&ip) {
            Some((until, _)) if *until > Instant::now() => {
                self.refused.fetch_add(1, Relaxed);
                true
            }
            Some(_) => {
                st.banned.remove(&ip);
                self.active.store(st.banned.len(), Relaxed);
                false
            }
            None => false,
        }
    }

    /// Counts a violation by `ip`; bans it when the policy says so.
    pub fn violation(&self, ip: IpAddr, what: &str) {
        if !self.counting.load(Relaxed) {
            return;
        }
        let mut st = self.lock();
        let Some(p) = st.policy else { return };
        let now = Instant::now();
        if st.strikes.len() > MAX_STRIKES {
            st.strikes
                .retain(|_, (start, _)| now.duration_since(*start) < p.window);
        }
        let e = st.strikes.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= p.window {
            *e = (now, 0);
        }
        e.1 += 1;
        if e.1 >= p.after {
            st.strikes.remove(&ip);
            let reason = format!("{} violations within {:?} (last: {what})", p.after, p.window);
            tracing::warn!(client = %ip, for_ = ?p.duration, "client banned: {reason}");
            self.insert_locked(&mut st, ip, p.duration, reason.clone());
            drop(st);
            self.total.fetch_add(1, Relaxed);
            self.send(BanNote::Banned {
                address: ip,
                duration: p.duration,
                reason,
            });
        }
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

    fn insert(&self, ip: IpAddr, duration: Duration, reason: String) {
        self.insert_locked(&mut self.lock(), ip, duration, reason);
    }

    fn insert_locked(&self, st: &mut State, ip: IpAddr, duration: Duration, reason: String) {
        st.banned.insert(ip, (Instant::now() + duration, reason));
        self.active.store(st.banned.len(), Relaxed);
    }

    /// Lifts a ban; says whether there was one.
    pub fn lift(&self, ip: IpAddr) -> bool {
        let had = self.remove(ip);
        self.send(BanNote::Lifted { address: ip });
        had
    }

    fn remove(&self, ip: IpAddr) -> bool {
        let mut st = self.lock();
        let had = st.banned.remove(&ip).is_some();
        st.strikes.remove(&ip);
        self.active.store(st.banned.len(), Relaxed);
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

    /// Bans in force.
    pub fn list(&self) -> Vec<Ban> {
        let now = Instant::now();
        let mut st = self.lock();
        st.banned.retain(|_, (until, _)| *until > now);
        self.active.store(st.banned.len(), Relaxed);
        let mut out: Vec<Ban> = st
            .banned
            .iter()
            .map(|(ip, (until, reason))| Ban {
                address: *ip,
                remaining: until.duration_since(now),
                reason: reason.clone(),
            })
            .collect();
        out.sort_by_key(|b| b.address);
        out
    }

    pub fn active(&self) -> usize {
        self.active.load(Relaxed)
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
