//! The engine's buffers: taken from a per-worker free list when a
//! connection has something to read or write, given back as soon as they
//! are empty, so that an idle keep-alive connection holds none.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::task::Poll;

use bytes::BytesMut;
use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The size of a pooled buffer: most request heads fit in one.
pub const SIZE: usize = 4 * 1024;
/// Free buffers kept per worker thread.
const KEEP: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// Free read buffers (see [`Held`]).
    static FREE_READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    /// The `Date` value of the current second.
    static DATE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    /// Both clocks read at one moment, to turn one into the other.
    static BASE: std::cell::Cell<Option<(tokio::time::Instant, std::time::SystemTime)>> = const { std::cell::Cell::new(None) };
}

/// An empty buffer from this worker's free list (or a new one).
pub fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(SIZE))
}

/// An empty read buffer from this worker's free list (or a new one).
pub fn take_read() -> BytesMut {
    FREE_READ
        .with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(SIZE))
}

/// Gives a read buffer back when it is the only reference to its memory
/// and that is of the pooled size; otherwise it is dropped (its memory
/// is freed with the last piece that refers to it).
pub fn give_read(mut b: BytesMut) {
    b.clear();
    if !b.try_reclaim(SIZE) || b.capacity() != SIZE {
        return;
    }
    // `try_with`: a buffer dropped while its thread ends is just freed.
    let _ = FREE_READ.try_with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(b);
        }
    });
}

/// Gives a buffer back (one that grew past the pooled size is freed).
pub fn give(mut v: Vec<u8>) {
    if v.capacity() != SIZE {
        return;
    }
    v.clear();
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() < KEEP {
            f.push(v);
        }
    });
}

/// A buffer from the free list, given back when dropped.
#[derive(Debug)]
pub struct Pooled(Vec<u8>);

impl Pooled {
    pub fn take() -> Self {
        Pooled(take())
    }
}

impl std::ops::Deref for Pooled {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// The `Date` header value of the current second, formatted once per
/// second per worker (a copy shares its bytes).
pub fn date() -> HeaderValue {
    date_of(std::time::SystemTime::now())
}

/// The `Date` value at `at`, a time the caller read on tokio's clock: the
/// wall clock derived from it (the pair of clocks read again every ten
/// seconds), so that no clock is read per answer.
pub fn date_at(at: tokio::time::Instant) -> HeaderValue {
    let wall = BASE.with(|b| {
        let (mono, wall) = match b.get() {
            Some((mono, wall)) if at >= mono && at - mono < std::time::Duration::from_secs(10) => {
                (mono, wall)
            }
            _ => {
                let pair = (tokio::time::Instant::now(), std::time::SystemTime::now());
                b.set(Some(pair));
                pair
            }
        };
        wall + at.saturating_duration_since(mono)
    });
    date_of(wall)
}

fn date_of(now: std::time::SystemTime) -> HeaderValue {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        match &*d {
            Some((at, value)) if *at == secs => value.clone(),
            _ => {
                let text = bytes::Bytes::from(httpdate::fmt_http_date(now));
                let value = HeaderValue::from_maybe_shared(text).unwrap_or(HeaderValue::from_static(""));
                *d = Some((secs, value.clone()));
                value
            }
        }
    })
}

/// Bytes read from a connection and not yet used, in a pooled buffer
/// held only while there are any. A head taken out shares the buffer
/// (no copy); the buffer goes back to the free list once nothing else
/// refers to it.
#[derive(Debug, Default)]
pub struct Held {
    buf: BytesMut,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn data(&self) -> &[u8] {
        &self.buf
    }

    /// The first `n` bytes held, taken out without a copy (a head, kept
    /// for its request; a piece of a body on its way).
    pub fn freeze(&mut self, n: usize) -> bytes::Bytes {
        let n = n.min(self.buf.len());
        self.buf.split_to(n).freeze()
    }

    /// Marks `n` bytes as used.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        bytes::Buf::advance(&mut self.buf, n);
    }

    /// Gives the buffer back when nothing is in it.
    pub fn release(&mut self) {
        if self.is_empty() && self.buf.capacity() > 0 {
            give_read(std::mem::take(&mut self.buf));
        }
    }

    /// Reads more (holding at most `limit` bytes unused); 0 at the end of
    /// the stream. The buffer is taken only for an attempt to read and,
    /// when it is empty, given back while the read waits: a socket that
    /// only looked readable (tokio reports a new socket ready before it
    /// knows) holds no buffer.
    pub async fn read_from<R: AsyncRead + Unpin>(&mut self, io: &mut R, limit: usize) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_from(io, limit, cx)).await
    }

    /// [`Held::read_from`], polled.
    pub fn poll_read_from<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        limit: usize,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.make_room(limit) {
            return Poll::Ready(Err(e));
        }
        let polled = {
            // `read_buf` fills only the spare capacity (no zeroing); its
            // future keeps no state, so one poll of a fresh one is a
            // read attempt.
            let spare = self.buf.capacity() - self.buf.len();
            let mut limited = bytes::BufMut::limit(&mut self.buf, spare);
            let read = std::pin::pin!(io.read_buf(&mut limited));
            read.poll(cx)
        };
        if polled.is_pending() {
            self.release();
        }
        polled
    }

    /// Takes a buffer if none is held, and makes room at its end (the
    /// bytes held move to its start when nothing else refers to it).
    fn make_room(&mut self, limit: usize) -> io::Result<()> {
        if self.buf.capacity() == 0 {
            self.buf = take_read();
        }
        if self.buf.len() == self.buf.capacity() {
            let held = self.buf.len();
            if held >= limit {
                return Err(io::Error::other("buffer limit reached"));
            }
            self.buf.reserve((limit - held).min(held.max(SIZE)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_read_that_waits_holds_no_buffer_and_one_that_reads_keeps_its_bytes() {
        let (mut ours, mut peer) = tokio::io::duplex(64);
        let mut held = Held::default();
        // Nothing to read: the attempt takes a buffer and gives it back.
        assert!(held.read_from(&mut ours, 1024).now_or_never().is_none());
        assert_eq!(held.buf.capacity(), 0, "a waiting read holds no buffer");
        peer.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        let n = held.read_from(&mut ours, 1024).await.expect("read");
        assert_eq!(n, 16);
        // Waiting for more keeps what is held.
        assert!(held.read_from(&mut ours, 1024).now_or_never().is_none());
        assert_eq!(held.data(), b"GET / HTTP/1.1\r\n");
        held.consume(16);
        held.release();
        assert_eq!(held.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn a_head_taken_out_shares_the_buffer_which_is_pooled_once_it_is_dropped() {
        let pooled = || FREE_READ.with(|f| f.borrow().len());
        let (mut ours, mut peer) = tokio::io::duplex(64);
        for keep_head in [true, false] {
            let mut held = Held::default();
            peer.write_all(b"GET / HTTP/1.1\r\n\r\nrest")
                .await
                .expect("write");
            held.read_from(&mut ours, 1024).await.expect("read");
            let at = held.data().as_ptr();
            let head = held.freeze(18);
            assert_eq!(&head[..], b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(head.as_ptr(), at, "the head was copied");
            assert_eq!(held.data(), b"rest");
            held.consume(4);
            let before = pooled();
            if keep_head {
                // The head still refers to the buffer: it is not pooled.
                held.release();
                assert_eq!(pooled(), before);
            } else {
                drop(head);
                held.release();
                assert_eq!(pooled(), before + 1);
                let back = take_read();
                assert_eq!(back.capacity(), SIZE, "the whole buffer came back");
            }
        }
    }

    #[tokio::test]
    async fn a_buffer_goes_round_the_free_list_more_than_once() {
        let pooled = || FREE_READ.with(|f| f.borrow().len());
        let (mut ours, mut peer) = tokio::io::duplex(64);
        for round in 0..3 {
            let mut held = Held::default();
            peer.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
            held.read_from(&mut ours, 1024).await.expect("read");
            let head = held.freeze(18);
            drop(head);
            let before = pooled();
            held.release();
            assert_eq!(pooled(), before + 1, "round {round}: the buffer came back");
            let b = take_read();
            assert_eq!(b.capacity(), SIZE, "round {round}");
            give_read(b);
        }
    }
}
