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
//! was written (or at the start of the connection) up to the blank line;
//! empty lines before the request line are skipped, as hyper skips them.
//! Header names are recognised even when a read ends inside one.
//! Pipelined requests that arrive in the same read as an earlier body are
//! not inspected; hyper's own handling (Transfer-Encoding wins, the
//! connection closes) still applies to them.
//!
//! The same watch enforces `timeouts.request_header`: from the first read
//! of a head that leaves it incomplete to its blank line (a head that
//! arrives in one read costs no clock read). When it passes, the watch writes a `408`
//! itself and ends the stream, so hyper closes the connection. (hyper's own
//! header timeout, set to `client_idle`, runs from the moment it waits for
//! a head, so it bounds idle keep-alive time and closes without an answer.)
//! A response being written restarts the measure, so that a request body
//! still arriving while its response streams is never taken for a slow
//! head.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a client gets when its head takes longer than `request_header`.
const TIMEOUT_ANSWER: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 33\r\n\r\nthe request head came too slowly\n";

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
    /// A non-empty line (the request line) was seen in this head: empty
    /// lines before it do not end the head, since hyper skips them.
    started: bool,
    /// The current line holds nothing but `\r` so far.
    empty_line: bool,
    /// The first bytes of the current line, kept across reads so that a
    /// header name split between two reads is still recognised.
    name: [u8; NAME_LEN],
    name_len: u8,
    /// Bits: 1 = Content-Length seen, 2 = Transfer-Encoding seen.
    seen: u8,
    /// `timeouts.request_header`.
    head_timeout: Duration,
    /// Bytes of the current head have been read, and it is not complete.
    partial: bool,
    /// When the current head must be complete: set when a read of it first
    /// waits (a head that arrives whole never reads the clock).
    head_deadline: Option<Instant>,
    /// Armed only while a started head waits for more bytes.
    timer: Option<Pin<Box<Sleep>>>,
    /// The head timed out: bytes of [`TIMEOUT_ANSWER`] written so far.
    answering: Option<usize>,
}

const CONTENT_LENGTH: &[u8] = b"content-length:";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding:";
/// The longer of the two names above.
const NAME_LEN: usize = TRANSFER_ENCODING.len();

impl<I> FramingWatch<I> {
    pub fn new(inner: I, flag: Arc<FramingFlag>, head_timeout: Duration) -> Self {
        FramingWatch {
            inner,
            flag,
            in_head: true,
            started: false,
            empty_line: true,
            name: [0; NAME_LEN],
            name_len: 0,
            seen: 0,
            head_timeout,
            partial: false,
            head_deadline: None,
            timer: None,
            answering: None,
        }
    }

    /// A response is being written: the next bytes read start a new head.
    fn expect_head(&mut self) {
        self.head_deadline = None;
        if !self.in_head {
            self.in_head = true;
            self.partial = false;
            self.started = false;
            self.empty_line = true;
            self.name_len = 0;
            self.seen = 0;
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                if !self.empty_line {
                    self.started = true;
                } else if self.started {
                    if self.seen == 3 {
                        self.flag.0.store(true, Ordering::Relaxed);
                    }
                    self.in_head = false;
                    self.partial = false;
                    self.head_deadline = None;
                    return;
                }
                self.empty_line = true;
                self.name_len = 0;
                continue;
            }
            if b != b'\r' {
                self.empty_line = false;
            }
            let n = usize::from(self.name_len);
            if n < NAME_LEN {
                self.name[n] = b;
                self.name_len += 1;
                // Compare only when the line is as long as one of the names.
                let name = &self.name[..=n];
                if name.len() == CONTENT_LENGTH.len() && name.eq_ignore_ascii_case(CONTENT_LENGTH) {
                    self.seen |= 1;
                } else if name.len() == TRANSFER_ENCODING.len()
                    && name.eq_ignore_ascii_case(TRANSFER_ENCODING)
                {
                    self.seen |= 2;
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> FramingWatch<I> {
    /// Writes the 408 (best effort), then reports the end of the stream.
    fn poll_answer(&mut self, cx: &mut Context<'_>, mut written: usize) -> Poll<io::Result<()>> {
        let give_up = self
            .timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        while written < TIMEOUT_ANSWER.len() && !give_up {
            match Pin::new(&mut self.inner).poll_write(cx, &TIMEOUT_ANSWER[written..]) {
                Poll::Ready(Ok(n)) if n > 0 => written += n,
                Poll::Ready(_) => break,
                Poll::Pending => {
                    self.answering = Some(written);
                    return Poll::Pending;
                }
            }
        }
        if !give_up && Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
            self.answering = Some(TIMEOUT_ANSWER.len());
            return Poll::Pending;
        }
        self.answering = Some(TIMEOUT_ANSWER.len());
        self.timer = None;
        Poll::Ready(Ok(()))
    }

    /// Reading is pending: is the head that started out of time?
    fn head_timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        if !(self.in_head && self.partial) {
            return false;
        }
        let deadline = *self
            .head_deadline
            .get_or_insert_with(|| Instant::now() + self.head_timeout);
        let timer = match &mut self.timer {
            Some(t) => {
                if t.deadline() != deadline {
                    t.as_mut().reset(deadline);
                }
                t
            }
            None => self.timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        timer.as_mut().poll(cx).is_ready()
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for FramingWatch<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(written) = this.answering {
            return this.poll_answer(cx, written);
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        match r {
            Poll::Ready(Ok(())) if this.in_head => {
                let got = &buf.filled()[before..];
                this.partial |= !got.is_empty();
                this.scan(got);
            }
            Poll::Pending if this.head_timed_out(cx) => {
                tracing::debug!(after = ?this.head_timeout, "request head too slow: 408");
                // A short grace for the answer itself, then the stream ends.
                if let Some(t) = &mut this.timer {
                    t.as_mut().reset(Instant::now() + Duration::from_secs(1));
                }
                return this.poll_answer(cx, 0);
            }
            _ => {}
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
        let mut w = FramingWatch::new((), flag.clone(), Duration::from_secs(10));
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

    /// Found by `tests/integration/fuzz.rs`: a read that ends inside a
    /// header name hid the name, and empty lines before the request line
    /// (which hyper skips) were taken for the end of the head.
    #[test]
    fn split_names_and_leading_empty_lines_are_still_flagged() {
        let (flag, _) = scan_all(&[
            b"POST / HTTP/1.1\r\nContent-Le",
            b"ngth: 5\r\nTransfer-",
            b"Encoding: chunked\r\n\r\n",
        ]);
        assert!(flag, "names split between reads");
        let (flag, in_head) =
            scan_all(&[b"\r\n\nPOST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"]);
        assert!(flag, "empty lines before the request line");
        assert!(!in_head);
        let (flag, in_head) = scan_all(&[b"\r\n", b"\r\n"]);
        assert!(!flag);
        assert!(in_head, "only empty lines: the head has not started");
    }

    #[test]
    fn one_header_or_body_text_is_fine() {
        assert!(!scan_all(&[b"POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n"]).0);
        assert!(
            !scan_all(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Content-Length: 3\r\n\r\n"]).0
        );
    }
}
