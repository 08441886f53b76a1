//! TCP mode (`mode = "tcp"` listeners): each connection, once admitted
//! (and past TLS on https listeners), is relayed to a server of the
//! listener's pool, bytes copied both ways without interpretation. A half
//! close on one side is passed to the other; a server that cannot be
//! reached within the connect timeout is skipped for another. The pool's
//! algorithm picks the server (`least_requests` counts open connections;
//! `hash` on the client address).
//!
//! A session in which no byte moves either way for `timeouts.tcp_idle` is
//! closed.
//!
//! Exposes [`relay`], [`is_tcp`] and [`copy_until_idle`].

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::balancer::PickInput;
use crate::runtime::Runtime;

/// Whether the listener at `slot` relays TCP.
pub fn is_tcp(runtime: &ArcSwap<Runtime>, slot: usize) -> bool {
    matches!(runtime.load().listeners.get(slot), Some(Some(l)) if l.tcp_pool.is_some())
}

/// Relays `client` (of the listener at `slot`, from `peer`) to a server of
/// the listener's pool until both sides have closed.
pub async fn relay<S>(mut client: S, runtime: &Arc<ArcSwap<Runtime>>, slot: usize, peer: IpAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let rt = runtime.load_full();
    let Some(Some(l)) = rt.listeners.get(slot) else {
        return;
    };
    let Some(pool) = l.tcp_pool.as_deref().and_then(|p| rt.pool(p)) else {
        return;
    };
    let headers = http::HeaderMap::new();
    let input = PickInput {
        client_ip: peer,
        headers: &headers,
    };
    let mut avoid = Vec::new();
    for _ in 0..=pool.retries {
        let Some(pick) = pool.balancer.pick_avoiding(&input, &avoid) else {
            tracing::debug!(listener = %l.name, pool = %pool.name, %peer, "no server available: connection closed");
            return;
        };
        let (server, index) = (pick.server.clone(), pick.index);
        avoid.push(index);
        // Counted in flight for as long as the connection lasts.
        let _open = server.begin();
        let connected = tokio::time::timeout(rt.timeouts.connect, TcpStream::connect(server.addr)).await;
        let mut upstream = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(server = %server.name, error = %e, "TCP connect failed: trying another server");
                continue;
            }
            Err(_) => {
                tracing::debug!(server = %server.name, "TCP connect timed out: trying another server");
                continue;
            }
        };
        let _ = upstream.set_nodelay(true);
        match copy_until_idle(&mut client, &mut upstream, rt.timeouts.tcp_idle).await {
            Ok((up, down)) => {
                tracing::debug!(server = %server.name, bytes_up = up, bytes_down = down, "TCP session ended");
            }
            Err(e) => tracing::debug!(server = %server.name, error = %e, "TCP session ended with an error"),
        }
        return;
    }
}

/// Copies both ways until both sides have closed, or until no byte has
/// moved either way for `idle` (an error of kind `TimedOut` then). Returns
/// the bytes copied from `a` to `b` and from `b` to `a`.
pub async fn copy_until_idle<A, B>(a: &mut A, b: &mut B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let base = Instant::now();
    // Milliseconds after `base` of the last byte moved.
    let last = AtomicU64::new(0);
    let mut ta = Tracked {
        io: a,
        last: &last,
        base,
    };
    let mut tb = Tracked {
        io: b,
        last: &last,
        base,
    };
    let copy = tokio::io::copy_bidirectional(&mut ta, &mut tb);
    tokio::pin!(copy);
    loop {
        let deadline = base + Duration::from_millis(last.load(Relaxed)) + idle;
        tokio::select! {
            r = &mut copy => return r,
            () = tokio::time::sleep_until(deadline) => {
                let moved = base + Duration::from_millis(last.load(Relaxed));
                if Instant::now() >= moved + idle {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "TCP session idle"));
                }
            }
        }
    }
}

/// A stream that notes when bytes last moved through it.
struct Tracked<'a, S> {
    io: &'a mut S,
    last: &'a AtomicU64,
    base: Instant,
}

impl<S> Tracked<'_, S> {
    fn moved(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_after_idle_but_not_while_bytes_move() {
        let (mut client, mut ours_a) = tokio::io::duplex(1024);
        let (mut ours_b, mut server) = tokio::io::duplex(1024);
        let idle = Duration::from_secs(60);
        let relay = tokio::spawn(async move { copy_until_idle(&mut ours_a, &mut ours_b, idle).await });
        let started = Instant::now();
        // A byte every 50 s for 200 s: never idle for 60 s.
        let mut buf = [0u8; 1];
        for _ in 0..4 {
            client.write_all(b"x").await.expect("write");
            server.read_exact(&mut buf).await.expect("relayed");
            tokio::time::sleep(Duration::from_secs(50)).await;
            assert!(!relay.is_finished(), "closed while bytes moved");
        }
        // Then silence: closed 60 s after the last byte.
        let r = relay.await.expect("relay task");
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        let quiet_for = started.elapsed() - Duration::from_secs(150);
        assert!(
            quiet_for >= idle && quiet_for < idle + Duration::from_secs(1),
            "{quiet_for:?}"
        );
    }
}
