//! Counters the request path updates: cumulative, one set per listener,
//! route and server (a pool is the sum of its servers). A sampler turns
//! them into rates and percentiles once a second, off the hot path.
//!
//! Each set is split into cells, one per worker thread (as many cells as
//! CPUs, each on cache lines of its own): a request adds to its worker's
//! cell, so workers do not pass cache lines to each other per request,
//! and whoever reads ([`Histogram::read`], [`RequestStats::counts`]) sums
//! the cells.
//!
//! The counters of a listener (by name), a route (by host, path and pool)
//! and a server (on its `Backend`) live as long as the process, so reloads
//! do not reset them.

pub mod journal;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

// === Cells ===

/// How many cells a counter set has: the CPUs, rounded up to a power of
/// two (at most 64).
static CELLS: LazyLock<usize> = LazyLock::new(|| {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 64)
        .next_power_of_two()
});

thread_local! {
    /// This thread's cell (`usize::MAX` until first used).
    static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The cell index of the calling thread: threads take cells in turn as
/// they first count something.
fn mine() -> usize {
    MINE.with(|m| {
        let i = m.get();
        if i != usize::MAX {
            return i;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let i = NEXT.fetch_add(1, Relaxed) & (*CELLS - 1);
        m.set(i);
        i
    })
}

/// A value on cache lines of its own (128 bytes: adjacent-line
/// prefetching pairs 64-byte lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// One `T` per cell.
#[derive(Debug)]
struct Cells<T>(Box<[Padded<T>]>);

impl<T: Default> Default for Cells<T> {
    fn default() -> Self {
        Cells((0..*CELLS).map(|_| Padded::default()).collect())
    }
}

impl<T> Cells<T> {
    /// The calling thread's cell.
    fn mine(&self) -> &T {
        // The length is CELLS, a power of two, and `mine()` is below it.
        &self.0[mine() & (self.0.len() - 1)].0
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|p| &p.0)
    }
}

/// Seconds of chart history kept, for this instance and each fleet peer
/// (15 minutes).
pub const HISTORY_SECONDS: usize = 900;

/// Upper bounds of the latency buckets, in microseconds (the last bucket
/// is everything above).
pub const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// A histogram of durations with fixed buckets: `N - 1` upper bounds in
/// microseconds, and a last bucket for everything above. `Histogram` (15
/// buckets) measures latencies on [`BUCKETS_US`]; `Histogram<9>` TCP
/// session lengths on [`SESSION_BUCKETS_US`].
#[derive(Debug)]
pub struct Histogram<const N: usize = 15> {
    bounds: &'static [u64],
    cells: Cells<HistogramCell<N>>,
}

/// One worker's counts of a [`Histogram`].
#[derive(Debug)]
struct HistogramCell<const N: usize> {
    buckets: [AtomicU64; N],
    sum_us: AtomicU64,
}

impl<const N: usize> Default for HistogramCell<N> {
    fn default() -> Self {
        HistogramCell {
            buckets: [const { AtomicU64::new(0) }; N],
            sum_us: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn on(bounds: &'static [u64]) -> Self {
        assert!(bounds.len() + 1 == N, "one more bucket than bounds");
        Histogram {
            bounds,
            cells: Cells::default(),
        }
    }

    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds.iter().position(|b| us <= *b).unwrap_or(N - 1);
        let cell = self.cells.mine();
        cell.buckets[i].fetch_add(1, Relaxed);
        cell.sum_us.fetch_add(us, Relaxed);
    }

    /// The upper bounds of the buckets, in µs.
    pub fn bounds(&self) -> &'static [u64] {
        self.bounds
    }

    /// Per-bucket counts (not cumulative) and the sum in µs.
    pub fn read(&self) -> ([u64; N], u64) {
        let mut buckets = [0u64; N];
        let mut sum = 0u64;
        for c in self.cells.iter() {
            for (b, a) in buckets.iter_mut().zip(&c.buckets) {
                *b = b.wrapping_add(a.load(Relaxed));
            }
            sum = sum.wrapping_add(c.sum_us.load(Relaxed));
        }
        (buckets, sum)
    }
}

impl Default for Histogram<15> {
    fn default() -> Self {
        Histogram::on(&BUCKETS_US)
    }
}

impl Default for Histogram<9> {
    fn default() -> Self {
        Histogram::on(&SESSION_BUCKETS_US)
    }
}

/// Status classes counted: 1xx … 5xx.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Methods counted by name; everything else is `OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "OTHER",
];

fn method_index(m: &http::Method) -> usize {
    match *m {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::DELETE => 4,
        http::Method::OPTIONS => 5,
        http::Method::PATCH => 6,
        _ => 7,
    }
}

/// Requests of one listener, route or server.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// [method][class], per cell.
    counts: Cells<[[AtomicU64; 5]; 8]>,
    /// Time from the request's arrival to the response header.
    pub latency: Histogram,
}

impl RequestStats {
    pub fn record(&self, method: &http::Method, status: u16, latency: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        self.counts.mine()[method_index(method)][class].fetch_add(1, Relaxed);
        self.latency.observe(latency);
    }

    /// [method][class] counts.
    pub fn counts(&self) -> [[u64; 5]; 8] {
        let mut out = [[0u64; 5]; 8];
        for cell in self.counts.iter() {
            for (o, row) in out.iter_mut().zip(cell) {
                for (v, c) in o.iter_mut().zip(row) {
                    *v = v.wrapping_add(c.load(Relaxed));
                }
            }
        }
        out
    }

    pub fn total(&self) -> u64 {
        self.counts().iter().flatten().sum()
    }
}

/// A server's counters: requests, and time to the backend's response header.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub requests: RequestStats,
    pub header_latency: Histogram,
    /// TLS handshakes to the server that failed (a certificate that does
    /// not verify, a refused client certificate).
    pub tls_failures: AtomicU64,
    /// The last TLS failure: when (Unix ms) and why.
    last_tls_failure: Mutex<Option<(u64, String)>>,
    /// When the certificate it showed at the last TLS connection expires
    /// (Unix seconds; 0 unknown).
    tls_not_after: AtomicI64,
    /// TCP-mode sessions relayed to the server.
    pub tcp: TcpStats,
    /// Requests sent again on a new connection because the backend had
    /// closed the reused one they went out on (the keep-alive race).
    pub stale_retries: AtomicU64,
}

/// Upper bounds of the TCP session duration buckets, in microseconds: 1 s,
/// 5 s, 30 s, 1 min, 5 min, 30 min, 1 h, 1 day (the last bucket is
/// everything above).
pub const SESSION_BUCKETS_US: [u64; 8] = [
    1_000_000,
    5_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    1_800_000_000,
    3_600_000_000,
    86_400_000_000,
];

/// TCP-mode counters, of a listener or of a server.
#[derive(Debug, Default)]
pub struct TcpStats {
    /// Sessions open now.
    pub active: AtomicI64,
    /// Sessions relayed since start.
    pub sessions: AtomicU64,
    /// Bytes from clients to servers, and back, counted as sessions end.
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Connections to a server that failed or timed out.
    pub connect_failures: AtomicU64,
    /// Client connections closed because no server could take them.
    pub refused: AtomicU64,
    /// How long sessions lasted.
    pub durations: Histogram<{ SESSION_BUCKETS_US.len() + 1 }>,
}

impl TcpStats {
    /// Counts a session as open until the guard drops.
    pub fn open(&self) -> TcpSession<'_> {
        self.active.fetch_add(1, Relaxed);
        self.sessions.fetch_add(1, Relaxed);
        TcpSession(self)
    }

    /// Records an ended session's bytes and duration.
    pub fn ended(&self, up: u64, down: u64, lasted: Duration) {
        self.bytes_up.fetch_add(up, Relaxed);
        self.bytes_down.fetch_add(down, Relaxed);
        self.durations.observe(lasted);
    }
}

/// One open TCP session; see [`TcpStats::open`].
#[derive(Debug)]
pub struct TcpSession<'a>(&'a TcpStats);

impl Drop for TcpSession<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

impl ServerStats {
    pub fn stale_retry(&self) {
        self.stale_retries.fetch_add(1, Relaxed);
    }

    /// Counts a failed TLS handshake to the server and keeps why.
    pub fn tls_failure(&self, why: &str) {
        self.tls_failures.fetch_add(1, Relaxed);
        let at = journal::unix_ms();
        *self.last_tls_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, why.to_string()));
    }

    /// The last TLS failure to the server: when (Unix ms) and why.
    pub fn last_tls_failure(&self) -> Option<(u64, String)> {
        self.last_tls_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records the certificate (DER) a server showed on a new TLS connection.
    pub fn tls_connected(&self, cert: Option<&[u8]>) {
        if let Some(t) = cert.and_then(cert_not_after) {
            self.tls_not_after.store(t, Relaxed);
        }
    }

    /// When the server's certificate expires (Unix seconds), once seen.
    pub fn cert_expires(&self) -> Option<i64> {
        let at = self.tls_not_after.load(Relaxed);
        (at > 0).then_some(at)
    }
}

/// The expiry (Unix seconds) of a DER certificate.
pub fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Why a request was refused as the client's fault (a label of
/// `rampart_requests_refused_total`); the order is the counters' index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Content-Length` and `Transfer-Encoding` that two parsers could
    /// read differently (request smuggling).
    Framing,
    /// A chunked body that is not well formed.
    BadChunking,
    /// A head not whole within `timeouts.request_header` (408).
    HeaderTimeout,
    /// A head larger than allowed (431).
    HeadTooLarge,
    /// A target longer than allowed (414).
    UriTooLong,
    /// Any other malformed request (400).
    Malformed,
    /// A method or form rampart does not serve (501).
    NotImplemented,
    /// A path refused by normalisation.
    BadPath,
    BodyTooLarge,
    BodyTooSlow,
    BodyIdle,
    /// A firewall rule's deny (or tarpit).
    Denied,
    RateLimited,
}

impl Refusal {
    pub const ALL: [Refusal; 13] = [
        Refusal::Framing,
        Refusal::BadChunking,
        Refusal::HeaderTimeout,
        Refusal::HeadTooLarge,
        Refusal::UriTooLong,
        Refusal::Malformed,
        Refusal::NotImplemented,
        Refusal::BadPath,
        Refusal::BodyTooLarge,
        Refusal::BodyTooSlow,
        Refusal::BodyIdle,
        Refusal::Denied,
        Refusal::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Framing => "framing",
            Refusal::BadChunking => "bad_chunking",
            Refusal::HeaderTimeout => "header_timeout",
            Refusal::HeadTooLarge => "head_too_large",
            Refusal::UriTooLong => "uri_too_long",
            Refusal::Malformed => "malformed",
            Refusal::NotImplemented => "not_implemented",
            Refusal::BadPath => "bad_path",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::BodyTooSlow => "body_too_slow",
            Refusal::BodyIdle => "body_idle",
            Refusal::Denied => "denied",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// A listener's counters.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub requests: RequestStats,
    pub connections: AtomicI64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// TLS handshakes completed: [TLS 1.2, TLS 1.3].
    pub tls_handshakes: [AtomicU64; 2],
    pub tls_failures: AtomicU64,
    /// Client connections by the protocol they speak: [HTTP/1.1, HTTP/2,
    /// HTTP/3] (on TLS listeners as ALPN chose; counted once per
    /// connection).
    pub protocols: [AtomicU64; 3],
    /// QUIC handshakes started (connections past admission; a refused
    /// address starts none).
    pub quic_handshakes: AtomicU64,
    /// QUIC Retry packets sent (address validation asked for).
    pub quic_retries: AtomicU64,
    /// Connections closed at accept by the CIDR filter.
    pub refused: AtomicU64,
    /// Requests refused by path normalisation.
    pub bad_paths: AtomicU64,
    /// Requests whose client went away before sending them whole (an
    /// upload broken off): not held against any server.
    pub client_aborts: AtomicU64,
    /// Requests refused as the client's fault, by [`Refusal`].
    refusals: [AtomicU64; Refusal::ALL.len()],
    /// `mode = "tcp"` listeners: sessions relayed.
    pub tcp: TcpStats,
}

/// One client connection counted in its listener's active connections.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<ListenerStats>);

impl ListenerStats {
    pub fn refused(&self, why: Refusal) {
        self.refusals[why as usize].fetch_add(1, Relaxed);
    }

    /// Requests refused, by reason (in [`Refusal::ALL`]'s order).
    pub fn refusals(&self) -> [u64; Refusal::ALL.len()] {
        std::array::from_fn(|i| self.refusals[i].load(Relaxed))
    }

    pub fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.fetch_add(1, Relaxed);
        ConnectionGuard(self.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Relaxed);
    }
}

/// A fleet instance's gauges and counters (`rampart_fleet_*`).
#[derive(Debug, Default)]
pub struct FleetStats {
    /// The fleet revision applied (0: none yet).
    pub revision: AtomicU64,
    /// 1 while etcd answers.
    pub up: AtomicI64,
    pub applies: AtomicU64,
    pub refusals: AtomicU64,
}

/// Where listener and route counters live across reloads.
#[derive(Debug, Default)]
pub struct StatsStore {
    listeners: Mutex<HashMap<String, Arc<ListenerStats>>>,
    routes: Mutex<HashMap<String, Arc<RequestStats>>>,
    rules: Mutex<HashMap<String, Arc<AtomicU64>>>,
    /// Recent failing requests and changes.
    pub journal: Arc<journal::Journal>,
    /// The fleet's revision and connection (with `[fleet]`).
    pub fleet: Arc<FleetStats>,
}

impl StatsStore {
    pub fn listener(&self, name: &str) -> Arc<ListenerStats> {
        let mut m = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    /// A firewall rule's match counter, by rule name.
    pub fn rule(&self, name: &str) -> Arc<AtomicU64> {
        let mut m = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    pub fn route(&self, key: &str) -> Arc<RequestStats> {
        let mut m = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let h: Histogram = Histogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_micros(1_000));
        h.observe(Duration::from_secs(60));
        let (b, sum) = h.read();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 1);
        assert_eq!(b[BUCKETS_US.len()], 1);
        assert_eq!(sum, 400 + 1_000 + 60_000_000);
    }

    #[test]
    fn counts_from_many_threads_land_in_cells_of_their_own_and_add_up() {
        let r = Arc::new(RequestStats::default());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        r.record(&http::Method::GET, 200, Duration::from_micros(t * 1000));
                    }
                    mine()
                })
            })
            .collect();
        let cells: std::collections::HashSet<usize> =
            threads.into_iter().map(|t| t.join().expect("thread")).collect();
        // Threads take cells in turn: eight threads use more than one.
        assert!(cells.len() > 1 || *CELLS == 1, "{cells:?}");
        assert_eq!(r.total(), 8000);
        assert_eq!(r.counts()[0][1], 8000);
        let (b, sum) = r.latency.read();
        assert_eq!(b.iter().sum::<u64>(), 8000);
        assert_eq!(sum, (0..8u64).map(|t| t * 1000 * 1000).sum::<u64>());
        // Each cell has cache lines of its own.
        assert_eq!(std::mem::align_of::<Padded<[[AtomicU64; 5]; 8]>>(), 128);
    }

    #[test]
    fn tcp_sessions_are_counted_while_open_and_their_durations_bucketed() {
        let t = TcpStats::default();
        {
            let _a = t.open();
            let _b = t.open();
            assert_eq!(t.active.load(Relaxed), 2);
        }
        assert_eq!(t.active.load(Relaxed), 0);
        assert_eq!(t.sessions.load(Relaxed), 2);
        t.ended(10, 20, Duration::from_millis(500));
        t.ended(1, 2, Duration::from_secs(1));
        t.ended(1, 2, Duration::from_secs(90_000));
        let (b, sum_us) = t.durations.read();
        assert_eq!((b[0], b[1], b[SESSION_BUCKETS_US.len()]), (2, 0, 1));
        assert_eq!(sum_us, 500_000 + 1_000_000 + 90_000_000_000);
        assert_eq!((t.bytes_up.load(Relaxed), t.bytes_down.load(Relaxed)), (12, 24));
    }

    #[test]
    fn counts_by_method_and_class() {
        let s = RequestStats::default();
        s.record(&http::Method::GET, 200, Duration::from_millis(1));
        s.record(&http::Method::GET, 503, Duration::from_millis(1));
        s.record(
            &http::Method::from_bytes(b"PURGE").expect("method"),
            404,
            Duration::from_millis(1),
        );
        let c = s.counts();
        assert_eq!(c[0][1], 1);
        assert_eq!(c[0][4], 1);
        assert_eq!(c[7][3], 1);
        assert_eq!(s.total(), 3);
    }
}
