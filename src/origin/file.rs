//! [`FileStream`]: a byte range of an open file, sent as a body in chunks.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::fs::File;
use tokio::io::{AsyncRead, AsyncSeekExt, ReadBuf};

use crate::body::BodyError;

/// How much one frame carries at most.
pub(super) const CHUNK: usize = 64 * 1024;

/// A file (or a byte range of one) streamed from disk, [`CHUNK`] bytes a
/// frame. It yields exactly the length it was opened with: a file that
/// shrinks while it is being sent ends the body with an error rather than
/// a short body, so the peer never takes a truncated file for a whole one.
#[derive(Debug)]
pub struct FileStream {
    file: File,
    remaining: u64,
    /// The buffer of the read in flight, kept across `Pending`.
    buf: Option<BytesMut>,
}

impl FileStream {
    /// Streams `len` bytes of `file` starting at byte `start`.
    pub(super) async fn open(mut file: File, start: u64, len: u64) -> io::Result<FileStream> {
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        Ok(FileStream {
            file,
            remaining: len,
            buf: None,
        })
    }
}

impl http_body::Body for FileStream {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        let buf = this.buf.get_or_insert_with(|| BytesMut::zeroed(want));
        let mut read = ReadBuf::new(&mut buf[..]);
        let polled = Pin::new(&mut this.file).poll_read(cx, &mut read);
        let n = read.filled().len();
        if let Err(e) = ready!(polled) {
            this.buf = None;
            this.remaining = 0;
            return Poll::Ready(Some(Err(e.into())));
        }
        let Some(mut chunk) = this.buf.take() else {
            return Poll::Ready(None);
        };
        if n == 0 {
            this.remaining = 0;
            let e = io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent");
            return Poll::Ready(Some(Err(e.into())));
        }
        chunk.truncate(n);
        // `n <= want <= remaining`, so this never underflows.
        this.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
