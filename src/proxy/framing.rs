//! A watch on raw HTTP/1.1 request heads for framing that two parsers
//! could read differently.
//!
//! hyper resolves a request that carries both `Content-Length` and
//! `Transfer-Encoding` by dropping `Content-Length` (and closing the
//! connection afterwards), so the request handler can no longer see that the
//! request was ambiguous. rampart refuses such requests outright: this
//! wrapper looks at the bytes of each request head as they are read, and
//! flags the connection when one head names both headers; the pipeline then
//! answers 400 and forwards nothing.
//!
//! The head of a request is recognised as the bytes read after a response
//! was written (or at the start of the connection) up to the blank line.
//! Pipelined requests that arrive in the same read as an earlier body are
//! not inspected; hyper's own handling (Transfer-Encoding wins, the
//! connection closes) still applies to them.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Set when the current request head was ambiguous.
#[derive(Debug, Default)]
pub struct FramingFlag(AtomicBool);

impl FramingFlag {
    /// Returns whether the head just parsed was ambiguous, and clears it.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Wraps a client connection's byte stream.
#[derive(Debug)]
pub struct FramingWatch<I> {
    inner: I,
    flag: Arc<FramingFlag>,
    in_head: bool,
    line_start: bool,
    empty_line: bool,
    /// Bits: 1 = Content-Length seen, 2 = Transfer-Encoding seen.
    seen: u8,
}

impl<I> FramingWatch<I> {
    pub fn new(inner: I, flag: Arc<FramingFlag>) -> Self {
        FramingWatch {
            inner,
            flag,
            in_head: true,
            line_start: true,
            empty_line: false,
            seen: 0,
        }
    }

    /// A response is being written: the next bytes read start a new head.
    fn expect_head(&mut self) {
        if !self.in_head {
            self.in_head = true;
            self.line_start = true;
            self.seen = 0;
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if self.line_start {
                self.line_start = false;
                self.empty_line = true;
                let rest = &bytes[i..];
                if starts_with_ci(rest, b"content-length:") {
                    self.seen |= 1;
                } else if starts_with_ci(rest, b"transfer-encoding:") {
                    self.seen |= 2;
                }
            }
            match b {
                b'\n' if self.empty_line => {
                    if self.seen == 3 {
                        self.flag.0.store(true, Ordering::Relaxed);
                    }
                    self.in_head = false;
                    return;
                }
                b'\n' => self.line_start = true,
                b'\r' => {}
                _ => self.empty_line = false,
            }
        }
    }
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

impl<I: AsyncRead + Unpin> AsyncRead for FramingWatch<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.in_head && matches!(r, Poll::Ready(Ok(()))) {
            this.scan(&buf.filled()[before..]);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FramingWatch<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.expect_head();
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.expect_head();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(parts: &[&[u8]]) -> (bool, bool) {
        let flag = Arc::new(FramingFlag::default());
        let mut w = FramingWatch::new((), flag.clone());
        for p in parts {
            w.scan(p);
        }
        (flag.take(), w.in_head)
    }

    #[test]
    fn flags_both_headers_in_one_head() {
        let (flag, in_head) = scan_all(&[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        ]);
        assert!(flag);
        assert!(!in_head);
        // Split across reads, other case.
        let (flag, _) = scan_all(&[
            b"POST / HTTP/1.1\r\ntransfer-ENCODING: chunked\r\n",
            b"content-length: 3\r\n",
            b"\r\n",
        ]);
        assert!(flag);
    }

    #[test]
    fn one_header_or_body_text_is_fine() {
        assert!(!scan_all(&[b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n"]).0);
        assert!(
            !scan_all(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Content-Length: 3\r\n\r\n"]).0
        );
    }
}
