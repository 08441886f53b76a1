//! HTTP/2 attacks driven with a raw frame client over TLS (ALPN h2): rapid
//! reset, CONTINUATION flood, SETTINGS and PING floods, a client that never
//! opens its flow-control window, and HPACK dynamic table abuse. Each test
//! checks what rampart (hyper + h2) does to the attacking connection and that
//! a normal client on another connection is served meanwhile.
//!
//! rampart runs as a child process: memory is measured as the growth of its
//! VmRSS, CPU as its user+system time over the attack (from /proc), each
//! with a bound well above what an attack that is cut off costs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::support::*;

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

const PROTOCOL_ERROR: u32 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One frame: type, flags, stream id, payload.
#[derive(Debug, Clone)]
struct Frame {
    ty: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// GOAWAY: (last stream id, error code, debug data).
    fn goaway(&self) -> Option<(u32, u32, String)> {
        (self.ty == GOAWAY && self.payload.len() >= 8).then(|| {
            let p = &self.payload;
            (
                u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                String::from_utf8_lossy(&p[8..]).into_owned(),
            )
        })
    }
}

/// Encodes one frame (9-byte header + payload).
fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24);
    let mut out = Vec::with_capacity(9 + len);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// HPACK integer with an `n`-bit prefix; `first` holds the pattern bits.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// HPACK string literal, no Huffman.
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Literal header field without indexing, new name (0x00).
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_str(out, name);
    hpack_str(out, value);
}

/// Literal header field with incremental indexing, new name (0x40): the
/// entry goes into the decoder's dynamic table.
fn literal_indexed(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x40);
    hpack_str(out, name);
    hpack_str(out, value);
}

/// A GET request header block.
fn request_block(path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    literal(&mut b, b":method", b"GET");
    literal(&mut b, b":scheme", b"https");
    literal(&mut b, b":path", path.as_bytes());
    literal(&mut b, b":authority", b"localhost");
    b
}

/// Reads frames from `r` into `tx` until the connection ends; the last
/// event is `None` (closed or error).
async fn read_frames(mut r: ReadHalf<Tls>, tx: mpsc::UnboundedSender<Option<Frame>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while buf.len() >= 9 {
            let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let f = Frame {
                ty: buf[3],
                flags: buf[4],
                stream: u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff,
                payload: buf[9..9 + len].to_vec(),
            };
            buf.drain(..9 + len);
            if tx.send(Some(f)).is_err() {
                return;
            }
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(None);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A raw HTTP/2 client connection: the writer half here, frames read by a
/// task of its own.
struct Raw {
    w: WriteHalf<Tls>,
    rx: mpsc::UnboundedReceiver<Option<Frame>>,
    reader: tokio::task::JoinHandle<()>,
    /// Every frame received so far.
    seen: Vec<Frame>,
    closed: bool,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Opens a TLS connection with ALPN h2 and writes the preface and `first`
/// (the client's SETTINGS), nothing read yet.
async fn open(addr: SocketAddr, ca: &Path, first: &[u8]) -> Tls {
    let mut s = tls_connect(addr, "localhost", ca, &[b"h2"]).await;
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN picked h2");
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(first);
    s.write_all(&hello).await.expect("preface");
    s.flush().await.expect("flush");
    s
}

impl Raw {
    async fn connect(addr: SocketAddr, ca: &Path, first: &[u8]) -> Raw {
        let s = open(addr, ca, first).await;
        let (r, w) = tokio::io::split(s);
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(r, tx));
        let mut raw = Raw {
            w,
            rx,
            reader,
            seen: Vec::new(),
            closed: false,
        };
        // The server's SETTINGS comes first; ACK it.
        let f = raw.next(Duration::from_secs(5)).await.expect("server SETTINGS");
        assert_eq!((f.ty, f.flags), (SETTINGS, 0), "{f:?}");
        raw.send(&frame(SETTINGS, ACK, 0, &[]))
            .await
            .expect("SETTINGS ACK");
        raw
    }

    /// Writes bytes; Err if the server closed the connection or 5 s pass.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = async {
            self.w.write_all(bytes).await?;
            self.w.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(5), w).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("write timed out".into()),
        }
    }

    /// The next frame, or None when the connection closed or `limit` passed.
    async fn next(&mut self, limit: Duration) -> Option<Frame> {
        if self.closed {
            return None;
        }
        match tokio::time::timeout(limit, self.rx.recv()).await {
            Ok(Some(Some(f))) => {
                self.seen.push(f.clone());
                Some(f)
            }
            Ok(_) => {
                self.closed = true;
                None
            }
            Err(_) => None,
        }
    }

    /// Takes in every frame already received, without waiting.
    fn poll_seen(&mut self) {
        while !self.closed {
            match self.rx.try_recv() {
                Ok(Some(f)) => self.seen.push(f),
                Ok(None) | Err(mpsc::error::TryRecvError::Disconnected) => self.closed = true,
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
    }

    fn goaway(&self) -> Option<(u32, u32, String)> {
        self.seen.iter().find_map(Frame::goaway)
    }

    /// Reads until the server closes the connection (at most `limit`);
    /// returns how long that took, or None if it stayed open.
    async fn until_closed(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.closed {
                return Some(start.elapsed());
            }
            self.next(limit.saturating_sub(start.elapsed())).await;
        }
        self.closed.then(|| start.elapsed())
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The user+system CPU time of process `pid` (all its threads).
fn cpu_time(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &s[s.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the comm.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// A rampart process in front of one backend.
struct Setup {
    rp: Process,
    addr: SocketAddr,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn rss_kib(&self) -> u64 {
        rss_kib(self.rp.pid())
    }

    fn cpu(&self) -> Duration {
        cpu_time(self.rp.pid())
    }
}

async fn setup(backend: SocketAddr) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[admin]\naddress = \"127.0.0.1:0\"\n\
         [timeouts]\nclient_idle = \"2s\"\ndrain = \"1s\"\n\
         [limits]\nhttp2_max_pending_resets = 5\nhttp2_max_concurrent_streams = 50\n\
         max_header_bytes = \"16KiB\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"be\"\naddress = \"{backend}\"\n\
         [[route]]\npool = \"p\"\n"
    );
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(&cfg, toml).expect("config");
    let rp = Process::run(&cfg, dir.path());
    let addr = rp.addr("tls");
    let ca = dir.path().join("state/tls/ca.pem");
    Setup {
        rp,
        addr,
        ca,
        _dir: dir,
    }
}

/// A normal HTTP/2 client on a connection of its own: `n` requests, all 200.
async fn normal_client(addr: SocketAddr, ca: &Path, n: usize) {
    let mut c = h2_over(tls_connect(addr, "localhost", ca, &[b"h2"]).await).await;
    for i in 0..n {
        let resp = tokio::time::timeout(Duration::from_secs(5), c.send_request(get("/", "localhost")))
            .await
            .unwrap_or_else(|_| panic!("normal request {i} timed out"))
            .expect("normal response");
        let (status, _, _) = read(resp).await;
        assert_eq!(status, 200, "normal request {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let rss0 = s.rss_kib();
    let cpu0 = s.cpu();
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[])).await;
    let start = Instant::now();
    // Batches of HEADERS + RST_STREAM(CANCEL) pairs, up to 10 000 streams.
    let mut id = 1u32;
    let mut pairs = 0;
    while pairs < 10_000 && a.goaway().is_none() && !a.closed {
        let mut batch = Vec::new();
        for _ in 0..50 {
            batch.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &request_block("/")));
            batch.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            id += 2;
            pairs += 1;
        }
        if a.send(&batch).await.is_err() {
            break;
        }
        a.poll_seen();
    }
    let closed = a.until_closed(Duration::from_secs(5)).await;
    let elapsed = start.elapsed();
    let (last, code, debug) = a.goaway().expect("GOAWAY");
    let (cpu, rss) = (s.cpu() - cpu0, s.rss_kib().saturating_sub(rss0));
    eprintln!(
        "rapid reset: {pairs} pairs sent, GOAWAY last={last} code={code} {debug:?}, closed after {closed:?}, \
         {elapsed:?}, backend hits {}, rampart cpu {cpu:?}, rss +{rss} KiB",
        be.hits(),
    );
    // Cut off after a handful of streams: a few milliseconds of work (the
    // bound leaves room for a debug build on a loaded machine).
    assert!(cpu < Duration::from_millis(500), "rampart spent {cpu:?}");
    assert!(rss < 32 * 1024, "RSS grew by {rss} KiB");
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert_eq!(debug, "too_many_resets");
    // Cut off within a few streams of http2_max_pending_resets (5): the
    // GOAWAY names the last stream processed (11, the 6th, in practice).
    assert!(last <= 2 * 4 * 5 + 1, "last stream {last}");
    assert!(closed.is_some(), "the connection is closed after GOAWAY");
    assert!(pairs < 10_000, "cut off before the attack ended");
    normal_client(s.addr, &s.ca, 5).await;
}

/// Sends frames built by `make(i)` one batch at a time until the server
/// sends GOAWAY, closes, stops reading or `max` frames went out; returns
/// how many were written.
async fn flood(a: &mut Raw, max: usize, batch: usize, make: impl Fn(usize) -> Vec<u8>) -> usize {
    let mut sent = 0;
    while sent < max && a.goaway().is_none() && !a.closed {
        let mut b = Vec::new();
        for i in sent..(sent + batch).min(max) {
            b.extend(make(i));
        }
        if a.send(&b).await.is_err() {
            break;
        }
        sent = (sent + batch).min(max);
        a.poll_seen();
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_is_cut_off() {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let rss0 = s.rss_kib();
    let cpu0 = s.cpu();
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[])).await;
    let start = Instant::now();
    a.send(&frame(HEADERS, END_STREAM, 1, &request_block("/")))
        .await
        .expect("HEADERS");
    // Each CONTINUATION carries 4 KiB of small, complete header fields:
    // up to 4096 of them (16 MiB) against a 16 KiB header limit.
    let block = {
        let mut b = Vec::new();
        while b.len() < 4000 {
            literal(&mut b, b"x-flood", &[b'a'; 100]);
        }
        b
    };
    let sent = flood(&mut a, 4096, 4, |_| frame(CONTINUATION, 0, 1, &block)).await;
    let closed = a.until_closed(Duration::from_secs(5)).await;
    let elapsed = start.elapsed();
    let goaway = a.goaway();
    let (cpu, rss) = (s.cpu() - cpu0, s.rss_kib().saturating_sub(rss0));
    eprintln!(
        "CONTINUATION flood: {sent} frames ({} KiB) written, GOAWAY {goaway:?}, closed after {closed:?}, \
         {elapsed:?}, frames seen {:?}, backend hits {}, rampart cpu {cpu:?}, rss +{rss} KiB",
        sent * block.len() / 1024,
        a.seen.iter().map(|f| f.ty).collect::<Vec<_>>(),
        be.hits(),
    );
    assert!(cpu < Duration::from_millis(500), "rampart spent {cpu:?}");
    assert!(rss < 32 * 1024, "RSS grew by {rss} KiB");
    let (last, code, debug) = goaway.expect("GOAWAY");
    assert_eq!(
        (last, code, debug.as_str()),
        (0, ENHANCE_YOUR_CALM, "too_many_continuations")
    );
    assert!(closed.is_some(), "the connection is closed after GOAWAY");
    assert!(sent < 4096, "cut off before the attack ended");
    assert_eq!(be.hits(), 0, "no request reached the backend");
    normal_client(s.addr, &s.ca, 5).await;
}

/// Floods `frame_bytes` frames without reading anything: the server must
/// stop reading (or close) well before `max` frames; then a normal client is
/// served; then the attacker reads and gets `ack`s for at most what it sent.
async fn control_flood(what: &str, one: Vec<u8>, ack: (u8, u8)) {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let rss0 = s.rss_kib();
    let cpu0 = s.cpu();
    let mut t = open(s.addr, &s.ca, &settings(&[])).await;
    let max = 2_000_000usize;
    let batch = 1000;
    let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * batch).collect();
    let start = Instant::now();
    let mut sent = 0;
    let mut stalled = false;
    while sent < max {
        let w = async {
            t.write_all(&chunk).await?;
            t.flush().await
        };
        match tokio::time::timeout(Duration::from_millis(500), w).await {
            Ok(Ok(())) => sent += batch,
            Ok(Err(_)) => break,
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    let flood_time = start.elapsed();
    let (cpu, rss) = (s.cpu() - cpu0, s.rss_kib().saturating_sub(rss0));
    // The server no longer reads this connection; another one is served.
    normal_client(s.addr, &s.ca, 5).await;
    // Now read: count the answers until the server goes quiet or closes.
    let (r, _w) = tokio::io::split(t);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_frames(r, tx));
    let (mut acks, mut other, mut goaway, mut closed) = (0usize, Vec::new(), None, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Some(f))) => {
                if (f.ty, f.flags) == ack {
                    acks += 1;
                } else if f.ty == GOAWAY {
                    goaway = f.goaway();
                } else if other.len() < 10 {
                    other.push((f.ty, f.flags));
                }
            }
            Ok(_) => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    reader.abort();
    eprintln!(
        "{what} flood: {sent} frames ({} KiB) written in {flood_time:?}, stalled {stalled}, rampart cpu {cpu:?}, \
         rss +{rss} KiB; then read {acks} ACKs, other {other:?}, GOAWAY {goaway:?}, closed {closed}",
        sent * one.len() / 1024
    );
    assert!(stalled, "the server stopped reading the flood");
    assert!(sent < max / 2, "{sent} frames written");
    assert!(acks <= sent + batch, "{acks} answers for {sent} frames");
    // Idle (no request): the graceful GOAWAY, then closed, although the
    // client never answered the shutdown PING.
    assert_eq!(goaway.map(|g| (g.0, g.1)), Some((0x7fff_ffff, 0)));
    assert!(closed, "the connection is closed");
    // rampart answers each frame it reads (about 1-2 µs of CPU per frame
    // in a debug build) until it stops reading: the cost follows what the
    // attacker sent, at a bounded rate per frame.
    assert!(
        cpu < Duration::from_micros(10) * sent as u32 + Duration::from_millis(200),
        "rampart spent {cpu:?} on {sent} frames"
    );
    assert!(rss < 64 * 1024, "RSS grew by {rss} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_is_back_pressured() {
    control_flood("SETTINGS", settings(&[(0x3, 100)]), (SETTINGS, ACK)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_back_pressured() {
    control_flood("PING", frame(PING, 0, 0, b"12345678"), (PING, ACK)).await;
}

/// A response body of `left` bytes in 64 KiB chunks, produced only as fast
/// as it is written out; counts what it produced.
struct Endless {
    left: usize,
    produced: Arc<AtomicUsize>,
}

impl http_body::Body for Endless {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        self.produced.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b'x'; n])))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_flow_control_window_back_pressures_the_backend() {
    const BIG: usize = 256 * 1024 * 1024;
    let produced = Arc::new(AtomicUsize::new(0));
    let p = produced.clone();
    let be = Backend::start(move |req| {
        let p = p.clone();
        async move {
            if req.uri().path() == "/big" {
                http::Response::new(
                    Endless {
                        left: BIG,
                        produced: p,
                    }
                    .boxed(),
                )
            } else {
                http::Response::new(full("ok"))
            }
        }
    })
    .await;
    let s = setup(be.addr).await;
    let rss0 = s.rss_kib();
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may carry DATA.
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[(0x4, 0)])).await;
    let start = Instant::now();
    a.send(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request_block("/big"),
    ))
    .await
    .expect("HEADERS");
    let mut head = None;
    while head.is_none() {
        let f = a.next(Duration::from_secs(5)).await.expect("response HEADERS");
        assert_ne!(f.ty, DATA, "DATA sent into a zero window");
        if f.ty == HEADERS && f.stream == 1 {
            head = Some(f);
        }
    }
    // Wait until the backend stops making progress (100 ms without growth).
    let mut last = (produced.load(Ordering::SeqCst), Instant::now());
    let stuck = wait_until(Duration::from_secs(8), || {
        let now = produced.load(Ordering::SeqCst);
        let stable = now == last.0 && last.1.elapsed() >= Duration::from_millis(300);
        if now != last.0 {
            last = (now, Instant::now());
        }
        async move { stable }
    })
    .await;
    let held = produced.load(Ordering::SeqCst);
    let rss = s.rss_kib().saturating_sub(rss0);
    eprintln!(
        "zero window: backend wrote {} KiB of {} MiB before stalling ({stuck:?} after {:?}), rss +{rss} KiB",
        held / 1024,
        BIG >> 20,
        start.elapsed()
    );
    let head = head.expect("HEADERS");
    assert_eq!(head.payload.first(), Some(&0x88), ":status 200 (static index 8)");
    assert!(stuck.is_some(), "the backend stalls");
    assert!(
        held < 16 * 1024 * 1024,
        "backend wrote {held} bytes into a closed window"
    );
    assert!(rss < 100 * 1024, "RSS grew by {rss} KiB");
    a.poll_seen();
    assert!(a.seen.iter().all(|f| f.ty != DATA), "no DATA into a zero window");
    // Meanwhile a normal client is served.
    normal_client(s.addr, &s.ca, 5).await;
    // Opening the windows lets the body flow: it was flow control that held it.
    let mut wu = frame(WINDOW_UPDATE, 0, 0, &(1u32 << 20).to_be_bytes());
    wu.extend(frame(WINDOW_UPDATE, 0, 1, &(1u32 << 20).to_be_bytes()));
    a.send(&wu).await.expect("WINDOW_UPDATE");
    let mut got = 0usize;
    while got < 1 << 20 {
        let Some(f) = a.next(Duration::from_secs(5)).await else {
            break;
        };
        if f.ty == DATA && f.stream == 1 {
            got += f.payload.len();
        }
    }
    assert_eq!(got, 1 << 20, "exactly the opened window arrives");
    // The stream is not timed out by rampart while the client holds it open
    // (see the report): the client ends it.
    a.send(&frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()))
        .await
        .expect("RST_STREAM");
    a.send(&frame(GOAWAY, 0, 0, &[0; 8])).await.expect("GOAWAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_that_never_answers_is_closed() {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[])).await;
    // No request, and the shutdown PING after the idle GOAWAY is never
    // answered (client_idle is 2 s).
    let closed = a.until_closed(Duration::from_secs(8)).await;
    let frames: Vec<(u8, u8)> = a.seen.iter().map(|f| (f.ty, f.flags)).collect();
    eprintln!(
        "idle, no PING ACK: frames {frames:?}, GOAWAY {:?}, closed after {closed:?}",
        a.goaway()
    );
    assert_eq!(
        a.goaway().map(|g| (g.0, g.1)),
        Some((0x7fff_ffff, 0)),
        "graceful GOAWAY"
    );
    assert!(frames.contains(&(PING, 0)), "shutdown PING");
    let closed = closed.expect("the connection is closed");
    assert!(closed < Duration::from_secs(6), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpack_table_size_update_over_the_limit_is_a_connection_error() {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[])).await;
    // A dynamic table size update to 1 MiB; the server allows 4096.
    let mut b = Vec::new();
    hpack_int(&mut b, 0x20, 5, 1 << 20);
    b.extend(request_block("/"));
    a.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &b))
        .await
        .expect("HEADERS");
    let closed = a.until_closed(Duration::from_secs(5)).await;
    let goaway = a.goaway();
    eprintln!("HPACK size update: GOAWAY {goaway:?}, closed after {closed:?}");
    // RFC 7541 asks for COMPRESSION_ERROR; h2 0.4 maps every HPACK
    // decoding error to PROTOCOL_ERROR. Either way the connection is over.
    let (last, code, _) = goaway.expect("GOAWAY");
    assert_eq!((last, code), (0, PROTOCOL_ERROR));
    assert!(closed.is_some());
    assert_eq!(be.hits(), 0);
    normal_client(s.addr, &s.ca, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpack_huge_entries_are_bounded() {
    let be = Backend::named("ok").await;
    let s = setup(be.addr).await;
    let rss0 = s.rss_kib();
    let mut a = Raw::connect(s.addr, &s.ca, &settings(&[])).await;
    // Requests that each insert 3 KiB entries into the dynamic table (bounded
    // at 4096 bytes, so every insert evicts the previous one), within the
    // 16 KiB header limit: all served.
    // Rounds of 40 streams, under http2_max_concurrent_streams (50).
    let mut id = 1;
    for round in 0..5u32 {
        for i in 0..40u32 {
            let mut b = request_block("/");
            literal_indexed(&mut b, format!("x-big-{round}-{i}").as_bytes(), &[b'v'; 3000]);
            a.send(&frame(HEADERS, END_HEADERS | END_STREAM, id, &b))
                .await
                .expect("HEADERS");
            id += 2;
        }
        let mut ok = 0;
        while ok < 40 {
            let f = a.next(Duration::from_secs(5)).await.expect("a response");
            assert_ne!(f.ty, RST_STREAM, "{f:?}");
            assert_ne!(f.ty, GOAWAY, "{f:?}");
            // :status 200 is index 8 of the static table: 0x88.
            if f.ty == HEADERS {
                assert_eq!(f.payload.first(), Some(&0x88), "{f:?}");
                ok += 1;
            }
        }
    }
    // One entry larger than the whole header limit (64 KiB value against
    // 16 KiB), split over CONTINUATION frames.
    let mut b = request_block("/");
    literal_indexed(&mut b, b"x-huge", &vec![b'v'; 64 * 1024]);
    let mut chunks = b.chunks(16_000);
    let mut frames = frame(HEADERS, END_STREAM, id, chunks.next().expect("chunk"));
    let rest: Vec<&[u8]> = chunks.collect();
    for (i, c) in rest.iter().enumerate() {
        let flags = if i + 1 == rest.len() { END_HEADERS } else { 0 };
        frames.extend(frame(CONTINUATION, flags, id, c));
    }
    let _ = a.send(&frames).await;
    let closed = a.until_closed(Duration::from_secs(5)).await;
    let rss = s.rss_kib().saturating_sub(rss0);
    eprintln!(
        "HPACK huge entry: GOAWAY {:?}, closed after {closed:?}, rss +{rss} KiB",
        a.goaway()
    );
    assert!(
        a.seen.iter().all(|f| f.stream != id),
        "no answer on the huge stream"
    );
    assert_eq!(
        a.goaway(),
        Some((id - 2, ENHANCE_YOUR_CALM, "header_list_way_too_large".to_string()))
    );
    assert!(closed.is_some(), "the connection is closed after GOAWAY");
    assert!(rss < 100 * 1024, "RSS grew by {rss} KiB");
    normal_client(s.addr, &s.ca, 2).await;
}
