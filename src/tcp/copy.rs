//! Copying both ways between two streams with tokio's bidirectional copy
//! (each direction through one fixed 8 KiB buffer, so a side that stops
//! reading stops the copy towards it: memory stays bounded), noting when
//! bytes last moved and how many moved each way.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Bytes moved by a copy, readable while it runs and after it stopped.
#[derive(Debug, Default)]
pub struct Moved {
    /// From `a` to `b`, and back.
    pub up: AtomicU64,
    pub down: AtomicU64,
    /// Milliseconds after the copy began of the last byte moved.
    last_ms: AtomicU64,
}

impl Moved {
    /// Notes that bytes moved now (`base`: when the relay began).
    pub(super) fn touch(&self, base: Instant) {
        let ms = u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Relaxed);
    }

    /// When bytes last moved, after the relay began.
    pub(super) fn last(&self) -> Duration {
        Duration::from_millis(self.last_ms.load(Relaxed))
    }

    /// Runs `relay` (begun at `base`, noting its bytes here) to its end,
    /// or until no byte has moved for `idle`: an error of kind `TimedOut`.
    pub(super) async fn until_idle(
        &self,
        base: Instant,
        idle: Duration,
        relay: impl std::future::Future<Output = io::Result<()>>,
    ) -> io::Result<()> {
        tokio::pin!(relay);
        loop {
            let last = || base + self.last();
            tokio::select! {
                r = &mut relay => return r,
                () = tokio::time::sleep_until(last() + idle) => {
                    if Instant::now() >= last() + idle {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "TCP session idle"));
                    }
                }
            }
        }
    }
}

/// Copies both ways until both sides have closed, or until no byte has
/// moved either way for `idle` (an error of kind `TimedOut` then). `moved`
/// counts the bytes copied from `a` to `b` (`up`) and back (`down`).
pub async fn copy_until_idle<A, B>(a: &mut A, b: &mut B, idle: Duration, moved: &Moved) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let base = Instant::now();
    let mut ta = Tracked {
        io: a,
        moved,
        count: &moved.up,
        base,
    };
    let mut tb = Tracked {
        io: b,
        moved,
        count: &moved.down,
        base,
    };
    let copy = async { tokio::io::copy_bidirectional(&mut ta, &mut tb).await.map(|_| ()) };
    moved.until_idle(base, idle, copy).await
}

/// A stream that counts the bytes read from it and notes when bytes last
/// moved through it either way.
struct Tracked<'a, S> {
    io: &'a mut S,
    moved: &'a Moved,
    /// Where the bytes read from this stream are counted.
    count: &'a AtomicU64,
    base: Instant,
}

impl<S> Tracked<'_, S> {
    fn touch(&self) {
        self.moved.touch(self.base);
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
        let n = buf.filled().len() - before;
        if matches!(r, Poll::Ready(Ok(()))) && n > 0 {
            self.count.fetch_add(n as u64, Relaxed);
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
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
        let moved = std::sync::Arc::new(Moved::default());
        let m = moved.clone();
        let relay = tokio::spawn(async move { copy_until_idle(&mut ours_a, &mut ours_b, idle, &m).await });
        let started = Instant::now();
        // A byte every 50 s for 200 s: never idle for 60 s.
        let mut buf = [0u8; 1];
        for _ in 0..4 {
            client.write_all(b"x").await.expect("write");
            server.read_exact(&mut buf).await.expect("relayed");
            tokio::time::sleep(Duration::from_secs(50)).await;
            assert!(!relay.is_finished(), "closed while bytes moved");
        }
        server.write_all(b"yz").await.expect("write back");
        client.read_exact(&mut [0u8; 2]).await.expect("relayed back");
        // Then silence: closed 60 s after the last byte.
        let r = relay.await.expect("relay task");
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        let quiet_for = started.elapsed() - Duration::from_secs(200);
        assert!(
            quiet_for >= idle && quiet_for < idle + Duration::from_secs(1),
            "{quiet_for:?}"
        );
        assert_eq!((moved.up.load(Relaxed), moved.down.load(Relaxed)), (4, 2));
    }

    #[tokio::test]
    async fn a_reader_that_stops_holds_the_copy_not_the_memory() {
        // The server side never reads: once the small pipes are full the
        // copy waits, and the client's writes stop being taken.
        let (mut client, mut ours_a) = tokio::io::duplex(64 * 1024);
        let (mut ours_b, _server) = tokio::io::duplex(64 * 1024);
        let moved = std::sync::Arc::new(Moved::default());
        let m = moved.clone();
        let _relay = tokio::spawn(async move {
            copy_until_idle(&mut ours_a, &mut ours_b, Duration::from_secs(3600), &m).await
        });
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match tokio::time::timeout(Duration::from_millis(200), client.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(e)) => panic!("write failed: {e}"),
                Err(_) => break,
            }
            assert!(sent < 10 * 1024 * 1024, "the relay kept taking bytes nobody read");
        }
        // What was taken: the server pipe, the client pipe, one copy buffer.
        let up = moved.up.load(Relaxed);
        assert!(up <= 64 * 1024 + 8 * 1024, "{up} bytes taken from the client");
        assert!(sent <= 3 * 64 * 1024, "{sent}");
    }
}
