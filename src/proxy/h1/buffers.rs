//! The engine's buffers: taken from a per-worker free list when a
//! connection has something to read or write, given back as soon as they
//! are empty, so that an idle keep-alive connection holds none.

use std::cell::RefCell;
use std::io;

use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The size of a pooled buffer: most request heads fit in one.
pub const SIZE: usize = 4 * 1024;
/// Free buffers kept per worker thread.
const KEEP: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// The `Date` value of the current second.
    static DATE: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
}

/// An empty buffer from this worker's free list (or a new one).
pub fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(SIZE))
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
    let now = std::time::SystemTime::now();
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
/// held only while there are any.
#[derive(Debug, Default)]
pub struct Held {
    buf: Vec<u8>,
    start: usize,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.is_empty() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Gives the buffer back when nothing is in it.
    pub fn release(&mut self) {
        if self.is_empty() && self.buf.capacity() > 0 {
            give(std::mem::take(&mut self.buf));
            self.start = 0;
        }
    }

    /// Reads more (holding at most `limit` bytes unused); 0 at the end of
    /// the stream.
    pub async fn read_from<R: AsyncRead + Unpin>(&mut self, io: &mut R, limit: usize) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf = take();
        }
        if self.start > 0 && self.buf.len() == self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            let held = self.buf.len() - self.start;
            if held >= limit {
                return Err(io::Error::other("buffer limit reached"));
            }
            self.buf.reserve((limit - held).min(self.buf.capacity()));
        }
        // `read_buf` fills only the spare capacity (no zeroing).
        let spare = self.buf.capacity() - self.buf.len();
        let mut limited = bytes::BufMut::limit(&mut self.buf, spare);
        io.read_buf(&mut limited).await
    }
}
