//! The client half of rampart's HTTP/1.1 engine: a request written to a
//! backend connection the caller holds, the response head read and parsed,
//! and the response body read from the same connection as the caller polls
//! it. There is no connection task: whoever polls the response (the client
//! connection's task) drives the backend connection.
//!
//! Exposes [`exchange`], the [`BodyReader`] of a response and
//! [`ClientError`].

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Response, StatusCode, Version};
use http_body::Body as HttpBody;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::buffers;
use super::chunked::{ChunkError, Decoder};
use super::head::{self, HeadError, ResponseBody};
use super::interim;
use super::write::{self, WriteError};
use crate::body::BodyError;
use crate::conns::BackendStream;
use crate::fields::{Class, Classes, HeaderView, RawFields};
use crate::proxy::message::Outgoing;

/// Largest response head accepted from a backend.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most header fields accepted in a response head.
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// Each later read of a body.
const BODY_READ: usize = 16 * 1024;

/// What went wrong talking to a backend.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the connection closed before a response")]
    Closed,
    #[error("invalid response head: {0}")]
    Head(#[from] HeadError),
    #[error("a response head larger than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
    #[error("a response field that is not valid")]
    Field,
    #[error("the connection closed before the response body ended")]
    Truncated,
    #[error("invalid chunked body: {0}")]
    Chunk(#[from] ChunkError),
    #[error("the request cannot be written: {0}")]
    Write(#[from] WriteError),
    #[error("the request body failed: {0}")]
    Body(BodyError),
    #[error("no response head within {0:?} of the request being sent")]
    HeadTimeout(std::time::Duration),
    #[error("the backend took no more of the request body for {0:?}")]
    WriteStalled(std::time::Duration),
}

impl ClientError {
    /// The backend went away before answering (not a refusal of what it
    /// was sent): a request that can be replayed may go elsewhere.
    pub fn is_reset(&self) -> bool {
        matches!(self, ClientError::Io(_) | ClientError::Closed)
    }
}

/// A failed exchange; `unsent`: the request head did not reach the
/// backend whole, so the backend cannot have acted on it;
/// `answered`: some of a response had arrived.
#[derive(Debug)]
pub struct Failure {
    pub error: ClientError,
    pub unsent: bool,
    pub answered: bool,
}

/// How a request body goes on the wire to the backend.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyOut {
    None,
    Length,
    Chunked,
}

/// A response head read from a backend: its status and its fields, kept
/// where they were read; and its body, read from the same connection.
#[derive(Debug)]
pub struct Exchanged {
    pub status: StatusCode,
    pub fields: RawFields,
    pub body: BodyReader,
}

/// Sends the request (`out`, `body`) on `stream` and reads the response
/// head (skipping interim 1xx answers other than 101). The response's
/// body reads from the same connection.
///
/// `wait` bounds the wait for the response head, counted from when the
/// request has been sent whole (so an upload may take longer), and each
/// wait for the backend to take more of the body. How long the client
/// may take to send its body is the body's own business (its guard).
pub async fn exchange<B>(
    mut stream: BackendStream,
    out: &Outgoing<'_>,
    body: &mut B,
    scratch: &mut Vec<u8>,
    wait: Duration,
    now: tokio::time::Instant,
) -> Result<Exchanged, Failure>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    let framing = request_head(scratch, out, body).map_err(|e| Failure {
        error: e.into(),
        unsent: true,
        answered: false,
    })?;
    let unsent = |e: io::Error| Failure {
        error: e.into(),
        unsent: true,
        answered: false,
    };
    stream.write_all(scratch).await.map_err(unsent)?;
    if framing == BodyOut::None {
        stream.flush().await.map_err(unsent)?;
    }
    // The body goes out while the response is watched for: a backend may
    // answer early (413, 401) and stop reading.
    let mut early = BytesMut::new();
    let answered = if framing == BodyOut::None {
        false
    } else {
        let sent = send_body(&mut stream, body, framing, scratch, &mut early, wait).await;
        sent.map_err(|error| Failure {
            error,
            unsent: false,
            answered: !early.is_empty(),
        })? == Sent::Answered
    };
    let head_only = *out.method == Method::HEAD;
    let mut got = false;
    let read = read_response(stream, head_only, early, &mut got);
    // Without a body the request went out at once: the wait counts from
    // `now` (no clock read); after a body, from its end.
    let sent = if framing == BodyOut::None {
        now
    } else {
        tokio::time::Instant::now()
    };
    let mut exchanged = match tokio::time::timeout_at(sent + wait, read).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::HeadTimeout(wait)),
    }
    .map_err(|error| Failure {
        error,
        unsent: false,
        answered: got,
    })?;
    if answered {
        exchanged.body.reusable = false;
    }
    Ok(exchanged)
}

/// Writes the request head to `scratch`: the fields as they came, less
/// those the edits drop and the framing ones (written here from the body)
/// and `Expect` (the client's `100-continue` was answered on its side),
/// then the edits' additions.
fn request_head<B: HttpBody>(
    scratch: &mut Vec<u8>,
    out: &Outgoing<'_>,
    body: &B,
) -> Result<BodyOut, WriteError> {
    scratch.clear();
    const FRAMING: Classes = Class::ContentLength.bit() | Class::TransferEncoding.bit() | Class::Expect.bit();
    let declared = out.head.contains("content-length");
    let fields = out
        .head
        .kept(out.edits.drop | FRAMING)
        .chain(out.edits.add.fields());
    let mut digits = [0u8; 20];
    let (framing, extra): (BodyOut, Option<Field<'_>>) = match body.size_hint().exact() {
        _ if body.is_end_stream() => {
            let wants = declared || matches!(*out.method, Method::POST | Method::PUT | Method::PATCH);
            (BodyOut::None, wants.then_some((b"content-length", b"0")))
        }
        Some(n) => (
            BodyOut::Length,
            Some((b"content-length", write::decimal(n, &mut digits))),
        ),
        None => (BodyOut::Chunked, Some((b"transfer-encoding", b"chunked"))),
    };
    write::request_head(
        scratch,
        out.method.as_str().as_bytes(),
        out.target.as_str().as_bytes(),
        fields.chain(extra),
    )?;
    Ok(framing)
}

/// A field as written: name and value.
type Field<'a> = (&'a [u8], &'a [u8]);

/// How sending a body ended.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    All,
    /// The backend answered first; the rest of the body was not sent.
    Answered,
}

/// Sends the body's frames; each chunk's framing goes in the same write
/// as its data. Whenever it would wait (for the client's body, or for
/// room on the socket), a backend that has begun to answer ends it.
async fn send_body<B>(
    stream: &mut BackendStream,
    body: &mut B,
    framing: BodyOut,
    scratch: &mut Vec<u8>,
    early: &mut BytesMut,
    wait: Duration,
) -> Result<Sent, ClientError>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    loop {
        let next = poll_fn(|cx| match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(f) => Poll::Ready(Ok(Some(f))),
            Poll::Pending => stream.poll_answering(cx, early).map_ok(|()| None),
        });
        let frame = match next.await? {
            None => return Ok(Sent::Answered),
            Some(None) => break,
            Some(Some(frame)) => frame.map_err(|e| ClientError::Body(e.into()))?,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not passed on
        };
        if data.is_empty() {
            continue;
        }
        scratch.clear();
        let mut bufs_store;
        let bufs: &mut [IoSlice<'_>] = if framing == BodyOut::Chunked {
            write::chunk_head(scratch, data.len());
            bufs_store = [
                IoSlice::new(scratch),
                IoSlice::new(&data),
                IoSlice::new(write::CHUNK_END),
            ];
            &mut bufs_store
        } else {
            bufs_store = [IoSlice::new(&data), IoSlice::new(&[]), IoSlice::new(&[])];
            &mut bufs_store[..1]
        };
        if !write_watching(stream, bufs, early, wait).await? {
            return Ok(Sent::Answered);
        }
    }
    let mut last = [IoSlice::new(write::LAST_CHUNK)];
    if framing == BodyOut::Chunked && !write_watching(stream, &mut last, early, wait).await? {
        return Ok(Sent::Answered);
    }
    let flush = poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx));
    tokio::time::timeout(wait, flush)
        .await
        .map_err(|_| ClientError::WriteStalled(wait))??;
    Ok(Sent::All)
}

/// Writes all of `bufs` unless the backend begins to answer while the
/// socket has no room (false then). A backend that takes none of it for
/// `wait` has stalled.
async fn write_watching(
    stream: &mut BackendStream,
    mut bufs: &mut [IoSlice<'_>],
    early: &mut BytesMut,
    wait: Duration,
) -> Result<bool, ClientError> {
    while !bufs.is_empty() {
        // The timer is registered only if the write has to wait.
        let write = poll_fn(|cx| match Pin::new(&mut *stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => Poll::Ready(r.map(Some)),
            Poll::Pending => stream.poll_answering(cx, early).map_ok(|()| None),
        });
        let n = tokio::time::timeout(wait, write)
            .await
            .map_err(|_| ClientError::WriteStalled(wait))??;
        match n {
            None => return Ok(false),
            Some(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
            Some(n) => IoSlice::advance_slices(&mut bufs, n),
        }
    }
    Ok(true)
}

/// Reads and parses the response head; the bytes after it stay in the
/// reader for the body. `got` is raised once any byte has arrived.
async fn read_response(
    mut stream: BackendStream,
    head_only: bool,
    early: BytesMut,
    got: &mut bool,
) -> Result<Exchanged, ClientError> {
    // What the backend sent while the request's body was being written
    // (over TLS) comes first.
    let mut buf = early;
    loop {
        *got |= !buf.is_empty();
        while !buf.is_empty() {
            let Some(h) = head::parse_response(&buf, MAX_RESPONSE_HEADERS, head_only)? else {
                break;
            };
            let interim = (100..200).contains(&h.status) && h.status != 101;
            let head = buf.split_to(h.len).freeze();
            if interim {
                // 100 Continue answers rampart's own request (a client's
                // `Expect` is answered on its side); others, such as 103
                // Early Hints, are offered to the client (see `interim`).
                if h.status != 100 {
                    if let Ok(r) = build(&head, &h) {
                        interim::offer(r);
                    }
                }
                continue;
            }
            let status = StatusCode::from_u16(h.status).map_err(|_| ClientError::Field)?;
            let fields = RawFields::new(head, &h.headers);
            let reusable = !h.close
                && (h.minor == 1 || h.keep_alive)
                && h.status != 101
                && h.body != ResponseBody::UntilClose;
            let state = match h.body {
                ResponseBody::None => State::Done,
                ResponseBody::Length(n) => State::Length(n),
                ResponseBody::Chunked => State::Chunked(Decoder::default()),
                ResponseBody::UntilClose => State::UntilClose,
            };
            let body = BodyReader {
                stream: Some(stream),
                buf,
                state,
                reusable,
            };
            return Ok(Exchanged { status, fields, body });
        }
        if buf.capacity() == 0 {
            // From the worker's free list; it goes back there when the
            // body reader is dropped with nothing else referring to it.
            buf = buffers::take_read();
        } else if buf.len() == buf.capacity() {
            if buf.len() >= MAX_RESPONSE_HEAD {
                return Err(ClientError::HeadTooLarge);
            }
            buf.reserve(buf.len().min(MAX_RESPONSE_HEAD - buf.len()));
        }
        // `read_buf` (not `try_read`) waits for readiness first and, after
        // a short read, forgets it: the next wait costs no read that
        // returns EAGAIN.
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(if buf.is_empty() {
                ClientError::Closed
            } else {
                ClientError::Truncated
            });
        }
    }
}

/// The response head as `http` types: values share the head's bytes.
fn build(bytes: &Bytes, h: &head::ResponseHead) -> Result<Response<()>, ClientError> {
    let headers = head::header_map(bytes, &h.headers).ok_or(ClientError::Field)?;
    let mut resp = Response::new(());
    *resp.status_mut() = StatusCode::from_u16(h.status).map_err(|_| ClientError::Field)?;
    *resp.version_mut() = if h.minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    *resp.headers_mut() = headers;
    Ok(resp)
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(Decoder),
    UntilClose,
    Done,
}

/// A response body being read from its backend connection.
#[derive(Debug)]
pub struct BodyReader {
    stream: Option<BackendStream>,
    /// Bytes read and not yet passed on.
    buf: BytesMut,
    state: State,
    /// The connection may carry another request once the body has ended.
    reusable: bool,
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        buffers::give_read(std::mem::take(&mut self.buf));
    }
}

impl BodyReader {
    /// The body has been read to its end.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes left, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The connection, when the body ended cleanly and nothing else came
    /// after it.
    pub fn take_reusable(&mut self) -> Option<BackendStream> {
        (self.is_done() && self.reusable && self.buf.is_empty())
            .then(|| self.stream.take())
            .flatten()
    }

    /// For a 101 answer: the connection and the bytes that followed the
    /// head (already the new protocol's).
    pub fn take_upgraded(&mut self) -> Option<(BackendStream, Bytes)> {
        let stream = self.stream.take()?;
        Some((stream, self.buf.split().freeze()))
    }

    /// The next run of body data.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, ClientError>>> {
        loop {
            if let Some(data) = self.next_data()? {
                return Poll::Ready(Some(Ok(data)));
            }
            if self.is_done() {
                return Poll::Ready(None);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Poll::Ready(Some(Err(ClientError::Truncated)));
            };
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(BODY_READ);
            }
            let read = std::pin::pin!(stream.read_buf(&mut self.buf));
            let n = ready!(read.poll(cx))?;
            if n == 0 {
                if matches!(self.state, State::UntilClose) {
                    self.state = State::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(ClientError::Truncated)));
            }
        }
    }

    /// Body data already in the buffer, if any; framing bytes consumed.
    fn next_data(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        match &mut self.state {
            State::Done => Ok(None),
            State::UntilClose => Ok(Some(self.buf.split().freeze())),
            State::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(self.buf.len());
                *left -= take as u64;
                if *left == 0 {
                    self.state = State::Done;
                }
                Ok(Some(self.buf.split_to(take).freeze()))
            }
            State::Chunked(dec) => {
                let p = dec.feed(&self.buf)?;
                let mut used = self.buf.split_to(p.consumed);
                if p.done {
                    self.state = State::Done;
                }
                Ok(p.data.map(|r| {
                    used.advance(r.start);
                    used.truncate(r.len());
                    used.freeze()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests;
