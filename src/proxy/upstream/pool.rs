//! Idle HTTP/1.1 backend connections: bare sockets kept per worker thread
//! (a shard each, so threads never contend), checked when taken out and
//! swept by one small task per shard while it holds any.
//!
//! A connection is fit for another request while its server is in the
//! configuration, it has been idle less than `backend_idle`, and nothing
//! is waiting to be read on it: a pooled connection the backend closed,
//! or that received bytes nobody asked for, shows as readable in the
//! socket's readiness, which costs no system call to look at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Waker};
use std::time::Duration;

use crate::proxy::h1::stream::BackendStream;

use tokio::sync::watch;
use tokio::time::Instant;

/// How often a shard's idle connections are looked at: closed ones go,
/// and so do those idle too long or whose server has left.
const SWEEP: Duration = Duration::from_millis(100);

/// A backend connection and what decides whether it may be pooled.
#[derive(Debug)]
pub struct Conn {
    pub stream: BackendStream,
    pub meta: Meta,
}

/// What decides whether a connection may be pooled, and where.
#[derive(Debug)]
pub struct Meta {
    pub addr: SocketAddr,
    /// Which TLS settings it was made with (0: plaintext): connections are
    /// shared only between requests that would make the same one.
    pub tls: usize,
    /// How long it may stay idle (`backend_idle`).
    pub idle_for: Duration,
    /// Most idle connections kept per server and thread.
    pub max_idle: usize,
    /// Raised when its server leaves the configuration.
    pub retired: watch::Receiver<bool>,
}

impl Meta {
    fn retired(&self) -> bool {
        *self.retired.borrow()
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Idle {
    /// Still fit to carry a request.
    fn fit(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < self.conn.meta.idle_for
            && !self.conn.meta.retired()
            && quiet(&self.conn.stream)
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

#[derive(Default)]
struct Shard {
    idle: HashMap<(SocketAddr, usize), Vec<Idle>>,
    /// A sweeper task is running for this shard.
    sweeping: bool,
}

type SharedShard = Arc<Mutex<Shard>>;

thread_local! {
    static SHARD: SharedShard = SharedShard::default();
}

fn lock(s: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most recently idled fit connection to `addr` made with the TLS
/// settings `tls` (0: plaintext) on this thread.
pub fn checkout(addr: SocketAddr, tls: usize) -> Option<Conn> {
    SHARD.with(|shard| {
        let mut s = lock(shard);
        let list = s.idle.get_mut(&(addr, tls))?;
        let now = Instant::now();
        while let Some(idle) = list.pop() {
            if idle.fit(now) {
                return Some(idle.conn);
            }
        }
        None
    })
}

/// Pools a connection whose last response ended cleanly (dropped instead
/// when its server left or the pool is full).
pub fn checkin(conn: Conn) {
    if conn.meta.retired() {
        return;
    }
    SHARD.with(|shard| {
        let mut s = lock(shard);
        let list = s.idle.entry((conn.meta.addr, conn.meta.tls)).or_default();
        if list.len() >= conn.meta.max_idle {
            return;
        }
        list.push(Idle {
            conn,
            since: Instant::now(),
        });
        if !s.sweeping {
            s.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(shard)));
        }
    });
}

/// Closes the shard's connections that are no longer fit, until it holds
/// none (or its thread is gone).
async fn sweep(shard: Weak<Mutex<Shard>>) {
    loop {
        tokio::time::sleep(SWEEP).await;
        let Some(shard) = shard.upgrade() else {
            return;
        };
        let mut s = lock(&shard);
        let now = Instant::now();
        s.idle.retain(|_, list| {
            list.retain(|i| i.fit(now));
            !list.is_empty()
        });
        if s.idle.is_empty() {
            s.sweeping = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests;
