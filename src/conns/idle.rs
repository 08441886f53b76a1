//! One server's idle HTTP/1.1 connections, shared by the worker threads:
//! a request's task moves between threads, so a connection given back on
//! one thread is taken out on another (a pool per thread left idle
//! connections on the thread that did not need them while the other
//! opened new ones, up to its own cap).
//!
//! Last in, first out: the connections in use stay warm and the others
//! age out. A connection is fit for another request while its server is in
//! the configuration, it has been idle less than `backend_idle`, it was
//! made with the TLS settings in force, and nothing is waiting to be read
//! on it: a connection the backend closed, or that received bytes nobody
//! asked for, shows as readable in the socket's readiness, which costs no
//! system call to look at. A sweeper task per server, while it holds any,
//! closes those that are no longer fit every 100 ms.
//!
//! Every connection is counted from the moment it is made (or taken out)
//! through its [`Lease`] until it is closed or given back.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::Instant;

use super::BackendStream;

/// How often a server's idle connections are looked at.
const SWEEP: Duration = Duration::from_millis(100);

/// What a connection is made with and may be kept for.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Which TLS settings it is made with (0: plaintext; else a
    /// generation that changes whenever the settings do).
    pub key: usize,
    /// How long it may stay idle (`backend_idle`).
    pub idle_for: Duration,
    /// Most idle connections kept for the server (`max_idle_per_server`).
    pub max_idle: usize,
}

/// One server's idle connections and counts.
#[derive(Debug, Default)]
pub struct IdleConns {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    list: Mutex<List>,
    idle: AtomicUsize,
    opened: AtomicU64,
    reused: AtomicU64,
    closed: AtomicU64,
    /// The server left the configuration: nothing is kept any more.
    retired: AtomicBool,
}

#[derive(Debug, Default)]
struct List {
    idle: Vec<Idle>,
    /// A sweeper task is running.
    sweeping: bool,
}

#[derive(Debug)]
struct Idle {
    stream: BackendStream,
    since: Instant,
    key: usize,
    idle_for: Duration,
}

impl Idle {
    /// Still fit to carry a request made with `key`.
    fn fit(&self, now: Instant, key: usize) -> bool {
        self.key == key && now.saturating_duration_since(self.since) < self.idle_for && quiet(&self.stream)
    }
}

/// The counts of a server's connections (`open` = `opened` − `closed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub opened: u64,
    pub reused: u64,
    pub closed: u64,
    pub idle: usize,
}

impl Counts {
    /// Connections open now, idle or carrying a request.
    pub fn open(&self) -> u64 {
        self.opened.saturating_sub(self.closed)
    }
}

/// A connection out of the pool (new or reused), counted as open until it
/// is given back ([`Lease::checkin`]) or dropped (then it is closed).
#[derive(Debug)]
pub struct Lease {
    home: Arc<Inner>,
    settings: Settings,
    /// Given back: not closed.
    back: bool,
}

fn lock(m: &Mutex<List>) -> std::sync::MutexGuard<'_, List> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl IdleConns {
    /// The most recently idled fit connection made with `s.key`. Unfit
    /// ones met on the way are closed.
    pub fn checkout(&self, s: Settings) -> Option<(BackendStream, Lease)> {
        self.checkout_at(s, Instant::now())
    }

    /// [`IdleConns::checkout`] at `now` (a time the caller read already).
    pub fn checkout_at(&self, s: Settings, now: Instant) -> Option<(BackendStream, Lease)> {
        let i = &self.inner;
        if i.idle.load(Relaxed) == 0 {
            return None;
        }
        let mut list = lock(&i.list);
        while let Some(idle) = list.idle.pop() {
            i.idle.fetch_sub(1, Relaxed);
            if idle.fit(now, s.key) {
                drop(list);
                i.reused.fetch_add(1, Relaxed);
                let lease = Lease {
                    home: i.clone(),
                    settings: s,
                    back: false,
                };
                return Some((idle.stream, lease));
            }
            i.closed.fetch_add(1, Relaxed);
        }
        None
    }

    /// Counts a connection just made.
    pub fn opened(&self, s: Settings) -> Lease {
        self.inner.opened.fetch_add(1, Relaxed);
        Lease {
            home: self.inner.clone(),
            settings: s,
            back: false,
        }
    }

    pub fn counts(&self) -> Counts {
        let i = &self.inner;
        Counts {
            opened: i.opened.load(Relaxed),
            reused: i.reused.load(Relaxed),
            closed: i.closed.load(Relaxed),
            idle: i.idle.load(Relaxed),
        }
    }

    /// The server left the configuration: its idle connections close now,
    /// and those in use when they are given back.
    pub fn retire(&self) {
        let i = &self.inner;
        i.retired.store(true, Relaxed);
        let gone = std::mem::take(&mut lock(&i.list).idle);
        i.idle.fetch_sub(gone.len(), Relaxed);
        i.closed.fetch_add(gone.len() as u64, Relaxed);
    }
}

impl Lease {
    /// Gives back a connection whose last response ended cleanly: kept
    /// for the next request, or closed when its server left or enough are
    /// kept.
    pub fn checkin(self, stream: BackendStream) {
        self.checkin_at(stream, Instant::now());
    }

    /// [`Lease::checkin`], idle since `since` (a time the caller read).
    pub fn checkin_at(mut self, stream: BackendStream, since: Instant) {
        let i = self.home.clone();
        if i.retired.load(Relaxed) {
            return; // dropped: counted as closed
        }
        let mut list = lock(&i.list);
        if list.idle.len() >= self.settings.max_idle {
            return;
        }
        list.idle.push(Idle {
            stream,
            since,
            key: self.settings.key,
            idle_for: self.settings.idle_for,
        });
        i.idle.fetch_add(1, Relaxed);
        self.back = true;
        if !list.sweeping {
            list.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(&i)));
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.back {
            self.home.closed.fetch_add(1, Relaxed);
        }
    }
}

/// Nothing to read: not closed by the peer, no unexpected bytes. The
/// readiness tokio keeps answers without a system call; only when it says
/// readable (a read that filled its buffer leaves it so) does a read check.
/// The check peeks, so that over TLS no byte of the session is taken.
fn quiet(s: &BackendStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let tcp = s.tcp();
    if tcp.poll_read_ready(&mut cx).is_pending() {
        return true;
    }
    let mut byte = [0u8; 1];
    tcp.poll_peek(&mut cx, &mut tokio::io::ReadBuf::new(&mut byte))
        .is_pending()
}

/// Closes the connections that are no longer fit, until none is kept (or
/// the server is gone).
async fn sweep(home: Weak<Inner>) {
    loop {
        tokio::time::sleep(SWEEP).await;
        let Some(i) = home.upgrade() else {
            return;
        };
        let mut list = lock(&i.list);
        let now = Instant::now();
        let before = list.idle.len();
        list.idle.retain(|c| c.fit(now, c.key));
        let gone = before - list.idle.len();
        i.idle.fetch_sub(gone, Relaxed);
        i.closed.fetch_add(gone as u64, Relaxed);
        if list.idle.is_empty() {
            list.sweeping = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests;
