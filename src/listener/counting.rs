//! Byte counts of a client connection, kept locally and added to the
//! listener's counters every 64 KiB and when the connection ends (one
//! atomic add per 64 KiB instead of one per read or write).

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stats::{ConnectionGuard, ListenerStats};

const FLUSH_AT: u64 = 64 * 1024;

/// A client stream that counts its bytes into its listener's statistics and
/// counts itself as an active connection while it lives.
#[derive(Debug)]
pub struct Counting<I> {
    inner: I,
    stats: Arc<ListenerStats>,
    _conn: ConnectionGuard,
    read: u64,
    written: u64,
}

impl<I> Counting<I> {
    pub fn new(inner: I, stats: Arc<ListenerStats>) -> Self {
        let conn = stats.connection();
        Counting {
            inner,
            stats,
            _conn: conn,
            read: 0,
            written: 0,
        }
    }

    pub fn get_ref(&self) -> &I {
        &self.inner
    }

    /// Counts bytes that moved past this wrapper (spliced in the kernel
    /// straight from and to the socket).
    pub fn add(&mut self, read: u64, written: u64) {
        self.read += read;
        self.written += written;
        self.flush_counts();
    }

    fn flush_counts(&mut self) {
        if self.read > 0 {
            self.stats.bytes_in.fetch_add(self.read, Relaxed);
            self.read = 0;
        }
        if self.written > 0 {
            self.stats.bytes_out.fetch_add(self.written, Relaxed);
            self.written = 0;
        }
    }
}

impl<I> Drop for Counting<I> {
    fn drop(&mut self) {
        self.flush_counts();
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counting<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read += n;
        if self.read >= FLUSH_AT {
            self.flush_counts();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counting<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            self.written += *n as u64;
            if self.written >= FLUSH_AT {
                self.flush_counts();
            }
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.written += *n as u64;
            if self.written >= FLUSH_AT {
                self.flush_counts();
            }
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
