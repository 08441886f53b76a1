//! Relaying between two plain sockets with `splice(2)`: bytes move from
//! one socket into a pipe and from the pipe into the other socket inside
//! the kernel, never copied into rampart's memory. Each direction owns one
//! pipe (its pages are taken only while bytes sit in it), so a session
//! holds no buffer of its own, and a side that stops reading stops the
//! direction towards it once its pipe is full.
//!
//! Used for plain TCP listeners; TLS listeners copy (the bytes must be
//! decrypted in user space). Empty pipes are kept for the next session in
//! a small per-thread pool, so that a short session does not pay for
//! creating and closing two pipes.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::pipe::{pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::copy::Moved;

/// Most bytes asked of one `splice` call (the pipe's default capacity).
const CHUNK: usize = 64 * 1024;

/// Empty pipes kept per thread for later sessions.
const POOLED: usize = 64;

/// A pipe: (read end, write end).
type Pipe = (OwnedFd, OwnedFd);

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// An empty pipe, from the pool or new.
fn take_pipe() -> io::Result<Pipe> {
    match PIPES.with(|p| p.borrow_mut().pop()) {
        Some(pipe) => Ok(pipe),
        None => pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).map_err(io::Error::from),
    }
}

/// Gives back a pipe known to be empty.
fn give_back(pipe: Pipe) {
    PIPES.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOLED {
            p.push(pipe);
        }
    });
}

/// Relays both ways between `a` and `b` until both directions have seen
/// their end (each end passed on as a half close), or until no byte has
/// moved for `idle` (an error of kind `TimedOut`). Counts into `moved` as
/// [`super::copy::copy_until_idle`] does.
pub async fn splice_until_idle(
    a: &TcpStream,
    b: &TcpStream,
    idle: Duration,
    moved: &Moved,
) -> io::Result<()> {
    let base = Instant::now();
    let up = one_way(a, b, &moved.up, moved, base);
    let down = one_way(b, a, &moved.down, moved, base);
    let both = async { tokio::try_join!(up, down).map(|_| ()) };
    moved.until_idle(base, idle, both).await
}

/// Moves bytes from `from` to `to` until `from` ends, then shuts down the
/// sending side of `to`.
async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    count: &std::sync::atomic::AtomicU64,
    moved: &Moved,
    base: Instant,
) -> io::Result<()> {
    // Dropped (closed) on an error or when the session is cut short, when
    // bytes may be left in it; given back only when empty.
    let (pipe_out, pipe_in) = take_pipe()?;
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        // The pipe is empty here: fill it from the socket.
        let n = from
            .async_io(Interest::READABLE, || splice_io(from, &pipe_in, flags))
            .await?;
        if n == 0 {
            give_back((pipe_out, pipe_in));
            socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write)?;
            return Ok(());
        }
        count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        moved.touch(base);
        // Drain it into the other socket.
        let mut left = n;
        while left > 0 {
            let sent = to
                .async_io(Interest::WRITABLE, || splice_io(&pipe_out, to, flags))
                .await?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            left -= sent;
            moved.touch(base);
        }
    }
}

fn splice_io(
    from: impl std::os::fd::AsFd,
    to: impl std::os::fd::AsFd,
    flags: SpliceFlags,
) -> io::Result<usize> {
    splice(from, None, to, None, CHUNK, flags).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Two connected socket pairs: (client, our side a) and (our side b, server).
    async fn pairs() -> (TcpStream, TcpStream, TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let (c, a) = tokio::join!(TcpStream::connect(addr), l.accept());
        let (b, s) = tokio::join!(TcpStream::connect(addr), l.accept());
        (c.expect("c"), a.expect("a").0, b.expect("b"), s.expect("s").0)
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_half_closes_pass() {
        let (mut client, a, b, mut server) = pairs().await;
        let moved = std::sync::Arc::new(Moved::default());
        let m = moved.clone();
        let relay = tokio::spawn(async move { splice_until_idle(&a, &b, Duration::from_secs(60), &m).await });
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let d = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&d).await.expect("write");
            client.shutdown().await.expect("half close");
            client
        });
        let mut got = Vec::new();
        server
            .read_to_end(&mut got)
            .await
            .expect("server reads to the end");
        assert!(got == data, "bytes differ");
        server
            .write_all(b"bye")
            .await
            .expect("answer after the half close");
        server.shutdown().await.expect("close");
        let mut client = writer.await.expect("writer");
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.expect("client reads");
        assert_eq!(back, b"bye");
        relay.await.expect("task").expect("relay ends cleanly");
        // Both pipes, empty, went back to this thread's pool (a
        // current-thread runtime), for the next session to take.
        assert_eq!(PIPES.with(|p| p.borrow().len()), 2);
        let (_p1, _p2) = (take_pipe().expect("pipe"), take_pipe().expect("pipe"));
        assert_eq!(PIPES.with(|p| p.borrow().len()), 0);
        let up = moved.up.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            (up, moved.down.load(std::sync::atomic::Ordering::Relaxed)),
            (1_000_000, 3)
        );
    }
}
