//! Per-client connection limits, checked at accept: connections open at
//! once, and new connections per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::ratelimit::Limiter;

/// The limits and the live counts.
#[derive(Debug)]
pub struct ConnLimits {
    max_open: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
    rate: Option<Limiter>,
    pub refused: AtomicU64,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl ConnLimits {
    /// `max_open` 0 = no limit; `per_second` None = no rate limit.
    pub fn new(max_open: u32, per_second: Option<NonZeroU32>) -> Self {
        ConnLimits {
            max_open,
            open: Mutex::new(HashMap::new()),
            rate: per_second.map(|r| Limiter::new(r, r)),
            refused: AtomicU64::new(0),
        }
    }

    /// Admits a new connection from `ip`, or refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnSlot> {
        if let Some(r) = &self.rate {
            if r.check(&super::ratelimit::RateKey::ip(ip)).is_err() {
                self.refused.fetch_add(1, Relaxed);
                return None;
            }
        }
        if self.max_open > 0 {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(ip).or_insert(0);
            if *n >= self.max_open {
                self.refused.fetch_add(1, Relaxed);
                return None;
            }
            *n += 1;
        }
        Some(ConnSlot {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if self.limits.max_open == 0 {
            return;
        }
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_per_client() {
        let l = Arc::new(ConnLimits::new(2, None));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = l.admit(ip).expect("first");
        let _b = l.admit(ip).expect("second");
        assert!(l.admit(ip).is_none(), "a third is refused");
        assert!(
            l.admit("192.0.2.2".parse().expect("ip")).is_some(),
            "other clients are not affected"
        );
        drop(a);
        assert!(l.admit(ip).is_some(), "a slot frees when a connection ends");
        assert_eq!(l.refused.load(Relaxed), 1);
    }

    #[test]
    fn new_connections_per_second() {
        let l = Arc::new(ConnLimits::new(0, NonZeroU32::new(3)));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let admitted = (0..10).filter(|_| l.admit(ip).is_some()).count();
        assert_eq!(admitted, 3);
    }
}
