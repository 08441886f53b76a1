//! Test fixtures: backends, clients, an in-process rampart and a rampart
//! process.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rampart::app::RunningApp;
use tokio::net::{TcpListener, TcpStream};

pub type TestBody = BoxBody<Bytes, std::io::Error>;

pub fn full(s: impl Into<Bytes>) -> TestBody {
    Full::new(s.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A backend HTTP/1.1 server on 127.0.0.1:0 that counts requests.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub async fn start<F, Fut>(handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Backend::serve(false, handler).await
    }

    /// The same over HTTP/2 in cleartext (h2c, prior knowledge).
    pub async fn start_h2c<F, Fut>(handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Backend::serve(true, handler).await
    }

    async fn serve<F, Fut>(h2c: bool, handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let h2 = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, hits) = (handler.clone(), h2.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let io = TokioIo::new(stream);
                    if h2c {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(io, svc)
                            .await;
                    } else {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, svc)
                            .with_upgrades()
                            .await;
                    }
                });
            }
        });
        Backend { addr, hits, task }
    }

    /// Answers with the request's path and the length of the body it read
    /// (`/path 12`).
    pub async fn echo_length() -> Backend {
        Backend::start(|req| async move {
            let path = req.uri().path().to_string();
            let n = body_len(req).await;
            Response::new(full(format!("{path} {n}")))
        })
        .await
    }

    /// Answers with its name in the body.
    pub async fn named(name: &'static str) -> Backend {
        Backend::start(move |_req| async move { Response::new(full(name)) }).await
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// How many bytes a request's body has (0 if it failed).
pub async fn body_len(req: Request<Incoming>) -> usize {
    use http_body_util::BodyExt;
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0)
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts rampart in-process from a TOML config (relative paths resolve
/// against `base`).
pub async fn start_app(toml: &str, base: &Path) -> RunningApp {
    let toml = with_test_admin(toml);
    let model =
        rampart::config::load_str(&toml, "test.toml", base, &rampart::tls::SystemEnv).expect("valid config");
    RunningApp::start(&model).await.expect("rampart starts")
}

/// Starts rampart in-process from a config file (so that it can be reloaded).
pub async fn start_app_file(path: &Path) -> RunningApp {
    let model = rampart::config::load_file(path, &rampart::tls::SystemEnv).expect("valid config");
    RunningApp::start(&model).await.expect("rampart starts")
}

/// Tests never use the fixed admin port: without an `[admin]` section the
/// admin API goes to a free port.
pub fn with_test_admin(toml: &str) -> String {
    if toml.contains("[admin]") {
        toml.to_string()
    } else {
        format!("[admin]\naddress = \"127.0.0.1:0\"\n{toml}")
    }
}

/// Calls the admin API: (status, JSON body).
pub async fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    admin_with(addr, method, path, body, None).await
}

pub async fn admin_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut c = h1(addr).await;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "admin");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(full(body.unwrap_or("").to_string())).expect("request");
    let (status, _, text) = read(c.go(req).await.expect("admin response")).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// One server's entry in `GET /api/pools`.
pub async fn server_info(admin_addr: SocketAddr, pool: &str, server: &str) -> Option<serde_json::Value> {
    let (_, v) = admin(admin_addr, "GET", "/api/pools", None).await;
    v["pools"].as_array()?.iter().find(|p| p["name"] == pool)?["servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == server)
        .cloned()
}

/// Waits until `GET /health/ready` answers 200: listeners bound and every
/// checked server has its first verdict.
pub async fn wait_ready(admin_addr: SocketAddr) {
    wait_until(std::time::Duration::from_secs(10), || async {
        admin(admin_addr, "GET", "/health/ready", None).await.0 == 200
    })
    .await
    .expect("rampart becomes ready");
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns the
/// time it took, or None.
pub async fn wait_until<F, Fut>(limit: std::time::Duration, mut cond: F) -> Option<std::time::Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

pub fn listener(app: &RunningApp, name: &str) -> SocketAddr {
    app.listeners
        .iter()
        .find(|l| l.name == name)
        .expect("listener")
        .addr
}

/// An HTTP/1.1 client connection.
pub async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    h1_over(stream).await
}

pub async fn h1_over<I>(io: I) -> hyper::client::conn::http1::SendRequest<TestBody>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("h1 handshake");
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

pub async fn h2_over<I>(io: I) -> hyper::client::conn::http2::SendRequest<TestBody>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

/// Reads a whole response into (status, headers, body text).
pub async fn read(resp: Response<Incoming>) -> (u16, http::HeaderMap, String) {
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub fn get(path: &str, host: &str) -> Request<TestBody> {
    Request::get(path)
        .header("host", host)
        .body(full(""))
        .expect("request")
}

/// A TLS client that trusts `ca_pem` and offers `alpn`.
pub async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    ca_pem: &Path,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    try_tls_connect(addr, sni, ca_pem, alpn)
        .await
        .expect("TLS handshake")
}

/// A TLS connection that trusts only `ca_pem`, or why there is none.
pub async fn try_tls_connect(
    addr: SocketAddr,
    sni: &str,
    ca_pem: &Path,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem).expect("ca file") {
        roots.add(c.expect("ca cert")).expect("add root");
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let stream = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).expect("server name");
    connector.connect(name, stream).await
}

/// Writes a raw request and reads until the server closes or `max` bytes.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && !request.ends_with(b"keep\r\n\r\n") {
                    // Enough for a status line and headers; bodies are short.
                    if out.len() > 12 {
                        let text = String::from_utf8_lossy(&out);
                        if let Some(len) = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                        {
                            let head = text.find("\r\n\r\n").map_or(0, |i| i + 4);
                            if out.len() >= head + len {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A rampart process started with `run -c FILE`.
pub struct Process {
    pub child: Child,
    pub listeners: HashMap<String, SocketAddr>,
    pub stderr: PathBuf,
    /// What it printed before `ready`.
    pub banner: String,
}

impl Process {
    pub fn run(config: &Path, workdir: &Path) -> Process {
        let config = config.to_str().expect("utf-8 path");
        Process::spawn(&["--log-format", "text", "run", "-c", config], workdir)
    }

    /// Starts `rampart ARGS` and reads its `listening` lines up to `ready`.
    pub fn spawn(args: &[&str], workdir: &Path) -> Process {
        Process::spawn_env(args, workdir, &[])
    }

    /// [`Process::spawn`] with these environment variables set.
    pub fn spawn_env(args: &[&str], workdir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Process {
        let stderr = workdir.join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(workdir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn rampart");
        let out = child.stdout.take().expect("stdout");
        let mut listeners = HashMap::new();
        let mut banner = String::new();
        for line in BufReader::new(out).lines() {
            let line = line.expect("stdout line");
            if line == "ready" {
                break;
            }
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.strip_prefix("listening ") {
                let mut parts = rest.split_whitespace();
                let (Some(name), Some(url)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let hostport = url.split("://").nth(1).expect("url").trim_end_matches('/');
                listeners.insert(name.to_string(), hostport.parse().expect("addr"));
            }
        }
        assert!(
            !listeners.is_empty(),
            "rampart printed no listener: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        Process {
            child,
            listeners,
            stderr,
            banner,
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners[name]
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `rampart ARGS` to completion: (exit code, stdout, stderr).
pub fn rampart(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rampart");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a [`Load`] saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ok: usize,
    pub failed: usize,
    /// Client connections opened (1 = the keep-alive connection was never lost).
    pub connections: usize,
    pub errors: Vec<String>,
}

/// A steady client load: GETs one after another on one keep-alive
/// connection (a new one only after an error), bounded in count and time.
pub struct Load {
    pub ok: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<LoadReport>,
}

impl Load {
    pub fn start(
        addr: SocketAddr,
        path: &'static str,
        max_requests: usize,
        max_time: std::time::Duration,
    ) -> Load {
        let ok = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ok2, stop2) = (ok.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut r = LoadReport::default();
            let mut client = None;
            for _ in 0..max_requests {
                if stop2.load(Ordering::SeqCst) || started.elapsed() > max_time {
                    break;
                }
                if client.is_none() {
                    client = Some(h1(addr).await);
                    r.connections += 1;
                }
                let Some(c) = client.as_mut() else { break };
                if c.ready().await.is_err() {
                    r.failed += 1;
                    r.errors.push("connection closed before a request".into());
                    client = None;
                    continue;
                }
                match c.go(get(path, "load.test")).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let body = resp.into_body().collect().await;
                        if status == 200 && body.is_ok() {
                            r.ok += 1;
                            ok2.fetch_add(1, Ordering::SeqCst);
                        } else {
                            r.failed += 1;
                            r.errors.push(format!("status {status}"));
                        }
                    }
                    Err(e) => {
                        r.failed += 1;
                        r.errors.push(e.to_string());
                        client = None;
                    }
                }
            }
            r
        });
        Load { ok, stop, task }
    }

    /// Successful requests so far.
    pub fn done(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits for the load to end by its own bounds.
    pub async fn finish(self) -> LoadReport {
        self.task.await.expect("load task")
    }

    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("load task")
    }
}

/// A backend that can be killed (listener and every connection dropped)
/// and brought back on the same address.
pub struct Killable {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    name: &'static str,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Killable {
    pub async fn start(name: &'static str) -> Killable {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut k = Killable {
            addr: l.local_addr().expect("addr"),
            hits: Arc::default(),
            name,
            task: None,
        };
        k.serve(l);
        k
    }

    fn serve(&mut self, l: TcpListener) {
        let (hits, name) = (self.hits.clone(), self.name);
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let hits = hits.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |_req| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, Infallible>(Response::new(full(name))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
            // Dropping the JoinSet (on abort) aborts every connection.
        }));
    }

    /// Drops the listener and every open connection.
    pub async fn kill(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same address.
    pub async fn revive(&mut self) {
        let l = TcpListener::bind(self.addr)
            .await
            .expect("rebind the same address");
        self.serve(l);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Sending on a client connection after waiting until it can take a
/// request (a new or just-used HTTP/1.1 connection may not be ready yet).
pub trait SendReady {
    fn go(
        &mut self,
        req: Request<TestBody>,
    ) -> impl Future<Output = hyper::Result<Response<Incoming>>> + Send;
}

impl SendReady for hyper::client::conn::http1::SendRequest<TestBody> {
    async fn go(&mut self, req: Request<TestBody>) -> hyper::Result<Response<Incoming>> {
        self.ready().await?;
        self.send_request(req).await
    }
}

impl SendReady for hyper::client::conn::http2::SendRequest<TestBody> {
    async fn go(&mut self, req: Request<TestBody>) -> hyper::Result<Response<Incoming>> {
        self.ready().await?;
        self.send_request(req).await
    }
}

/// A TCP port free on 127.0.0.1 now, for a program that must be told its
/// port (a child process, a config written before rampart starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A sample's value in the Prometheus text: the line that starts with
/// `line_prefix` (the name and, when given, its labels).
pub fn metric(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix).and_then(|v| v.trim().parse().ok()))
}

/// The admin API's `GET /metrics` text.
pub async fn metrics(admin: SocketAddr) -> String {
    read(
        h1(admin)
            .await
            .go(get("/metrics", "admin"))
            .await
            .expect("metrics"),
    )
    .await
    .2
}

/// An HTTP server that keeps every JSON document POSTed to it (alert
/// webhooks), and the documents.
/// A request's body as JSON, if it is JSON.
pub async fn json_body(req: Request<Incoming>) -> Option<serde_json::Value> {
    use http_body_util::BodyExt;
    let body = req.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

/// A CA of its own (named `ca_name`) and a certificate for `names` it
/// signed: the CA, the certificate and its key.
pub fn ca_and_leaf(
    ca_name: &str,
    names: &[&str],
) -> (rcgen::Certificate, rcgen::Certificate, rcgen::KeyPair) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params")
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("leaf");
    (ca_cert, leaf, key)
}

pub async fn webhook_sink() -> (Backend, std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let notes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let n2 = notes.clone();
    let hook = Backend::start(move |req| {
        let n = n2.clone();
        async move {
            if let Some(v) = json_body(req).await {
                n.lock().expect("lock").push(v);
            }
            http::Response::new(full("ok"))
        }
    })
    .await;
    (hook, notes)
}

/// Fails the test unless it runs as root (network namespaces need it; CI
/// runs as root).
pub fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(
        uid.as_deref().ok(),
        Some("0"),
        "this test needs root (CI runs as root) to create network namespaces"
    );
}

/// `bash SCRIPT ARGS` with `env`: whether it succeeded, and what it printed
/// (standard output, then standard error).
pub fn run_script(script: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
