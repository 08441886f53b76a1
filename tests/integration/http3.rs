//! HTTP/3 on an https listener: QUIC on the same port (UDP), the same
//! certificates and the same request path; `Alt-Svc` on the TCP side only
//! when HTTP/3 is on. The client is quinn with h3, trusting only the
//! listener's CA.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;

use crate::support::*;

/// A backend that answers `METHOD PATH BODY-LENGTH BODY-SHA256`, and
/// [`big`] for a path ending in `/big`.
async fn echo_backend() -> Backend {
    Backend::start(|req| async move {
        let (parts, body) = req.into_parts();
        if parts.uri.path().ends_with("/big") {
            return http::Response::new(full(big()));
        }
        if parts.uri.path().ends_with("/huge") {
            return http::Response::new(full(huge()));
        }
        let b = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        http::Response::new(full(format!(
            "{} {} {} {}",
            parts.method,
            parts.uri.path(),
            b.len(),
            sha256(&b)
        )))
    })
    .await
}

/// 1 MiB the backend answers with: bytes `i % 251`.
fn big() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8).collect()
}

/// 100 MiB: bytes `i % 253`.
fn huge() -> Vec<u8> {
    (0..100usize << 20).map(|i| (i % 253) as u8).collect()
}

fn sha256(b: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// An https listener `tls` (HTTP/3 on or off, `extra` keys), a route for
/// `/app`, a firewall rule denying `/app/admin`, a JSON access log.
fn config(be: &Backend, http3: bool, extra: &str) -> String {
    format!(
        "[runtime]\nstate_dir = \"state\"\n\
         [access_log]\nenabled = true\nformat = \"json\"\npath = \"access.log\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\nhttp3 = {http3}\n{extra}\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n[[route]]\npath = \"/app\"\npool = \"p\"\n\
         [[rule]]\nname = \"no-admin\"\naction = \"deny\"\n[rule.match]\npath_prefix = \"/app/admin\"\n",
        be.addr
    )
}

/// rampart with HTTP/3 on (and `extra` listener keys): its directory,
/// the app, its local CA and the listener's address.
async fn serving(
    be: &Backend,
    extra: &str,
) -> (
    tempfile::TempDir,
    rampart::app::RunningApp,
    std::path::PathBuf,
    std::net::SocketAddr,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start_app(&config(be, true, extra), dir.path()).await;
    let ca = app.local_ca.clone().expect("a local CA was created");
    let addr = listener(&app, "tls");
    (dir, app, ca, addr)
}

/// An HTTP/3 connection to `addr`, trusting only `ca_pem`.
struct H3 {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    /// The server's certificate (DER).
    leaf: Vec<u8>,
    _endpoint: quinn::Endpoint,
    _driver: tokio::task::JoinHandle<()>,
}

impl H3 {
    async fn connect(addr: std::net::SocketAddr, sni: &str, ca_pem: &std::path::Path) -> H3 {
        Self::try_connect(addr, sni, ca_pem)
            .await
            .expect("QUIC handshake")
    }

    async fn try_connect(
        addr: std::net::SocketAddr,
        sni: &str,
        ca_pem: &std::path::Path,
    ) -> Result<H3, quinn::ConnectionError> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(ca_pem).expect("ca file") {
            roots.add(c.expect("ca cert")).expect("add root");
        }
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC TLS");
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let conn = endpoint.connect(addr, sni).expect("connect").await?;
        let leaf = conn
            .peer_identity()
            .and_then(|i| {
                i.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
                    .ok()
            })
            .and_then(|chain| chain.first().map(|c| c.to_vec()))
            .unwrap_or_default();
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(conn))
            .await
            .expect("h3");
        let driver = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(H3 {
            send,
            leaf,
            _endpoint: endpoint,
            _driver: driver,
        })
    }

    /// Sends a request with `body` and reads the whole answer.
    async fn go(&mut self, method: &str, path: &str, body: Bytes) -> (http::Response<()>, Vec<u8>) {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .body(())
            .expect("request");
        let mut stream = self.send.send_request(req).await.expect("send request");
        if !body.is_empty() {
            stream.send_data(body).await.expect("send body");
        }
        stream.finish().await.expect("finish");
        let resp = stream.recv_response().await.expect("response");
        let mut got = Vec::new();
        while let Some(mut chunk) = stream.recv_data().await.expect("data") {
            let n = chunk.remaining();
            got.extend_from_slice(&chunk.copy_to_bytes(n));
        }
        (resp, got)
    }
}

#[tokio::test]
async fn http3_serves_the_same_routes_and_tcp_answers_offer_it() {
    let be = echo_backend().await;
    let (dir, app, ca, addr) = serving(&be, "").await;

    let mut c = H3::connect(addr, "localhost", &ca).await;
    let (resp, body) = c.go("GET", "/app/one", Bytes::new()).await;
    assert_eq!(resp.status(), 200);
    assert!(
        String::from_utf8_lossy(&body).starts_with("GET /app/one 0 "),
        "{body:?}"
    );
    // No Alt-Svc over HTTP/3 itself.
    assert!(resp.headers().get("alt-svc").is_none(), "{:?}", resp.headers());
    // A body of 1 MiB reaches the backend whole.
    let upload = Bytes::from(big());
    let (resp, body) = c.go("POST", "/app/up", upload.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("POST /app/up 1048576 {}", sha256(&upload))
    );
    // And 1 MiB back.
    let (resp, body) = c.go("GET", "/app/big", Bytes::new()).await;
    assert_eq!((resp.status().as_u16(), body.len()), (200, 1 << 20));
    assert_eq!(sha256(&body), sha256(&big()));
    // Many requests on one connection at once.
    let mut streams = Vec::new();
    for i in 0..20 {
        let req = http::Request::get(format!("https://localhost/app/s{i}"))
            .body(())
            .expect("request");
        let mut s = c.send.send_request(req).await.expect("send");
        s.finish().await.expect("finish");
        streams.push((i, s));
    }
    for (i, mut s) in streams {
        assert_eq!(s.recv_response().await.expect("response").status(), 200);
        let mut got = Vec::new();
        while let Some(mut chunk) = s.recv_data().await.expect("data") {
            let n = chunk.remaining();
            got.extend_from_slice(&chunk.copy_to_bytes(n));
        }
        assert!(String::from_utf8_lossy(&got).starts_with(&format!("GET /app/s{i} 0 ")));
    }
    // No route: 404; the firewall's rule: 403; both rampart's own answers.
    let (resp, _) = c.go("GET", "/elsewhere", Bytes::new()).await;
    assert_eq!(resp.status(), 404);
    let (resp, _) = c.go("GET", "/app/admin/users", Bytes::new()).await;
    assert_eq!(resp.status(), 403);
    // The access log says HTTP/3.
    let path = dir.path().join("access.log");
    let logged = wait_until(std::time::Duration::from_secs(5), || async {
        std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            >= 24
    })
    .await;
    assert!(logged.is_some(), "25 access-log lines");
    let text = std::fs::read_to_string(&path).expect("log");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert_eq!(first["protocol"], "HTTP/3", "{first}");
    assert_eq!(first["status"], 200, "{first}");
    assert!(
        first["uri"].as_str().is_some_and(|u| u.ends_with("/app/one")),
        "{first}"
    );
    let m = metrics(app.admin().expect("admin")).await;
    assert!(
        m.contains("rampart_connections_by_protocol_total{listener=\"tls\",protocol=\"HTTP/3\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("rampart_quic_handshakes_started_total{listener=\"tls\"} 1"),
        "{m}"
    );

    // The TCP side offers HTTP/3 on the same port.
    let tls = tls_connect(addr, "localhost", &ca, &[b"http/1.1"]).await;
    let mut h1c = h1_over(tls).await;
    let (status, headers, _) = read(h1c.go(get("/app/two", "localhost")).await.expect("response")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["alt-svc"], format!("h3=\":{}\"; ma=86400", addr.port()));
    app.shutdown().await;

    // Without `http3`, no Alt-Svc and no UDP socket.
    let app = start_app(&config(&be, false, ""), dir.path()).await;
    let addr = listener(&app, "tls");
    let tls = tls_connect(addr, "localhost", &ca, &[b"http/1.1"]).await;
    let mut h1c = h1_over(tls).await;
    let (status, headers, _) = read(h1c.go(get("/app/two", "localhost")).await.expect("response")).await;
    assert_eq!(status, 200);
    assert!(headers.get("alt-svc").is_none(), "{headers:?}");
    assert!(
        std::net::UdpSocket::bind(addr).is_ok(),
        "the UDP port is free when HTTP/3 is off"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_refused_address_gets_no_quic_handshake() {
    let be = echo_backend().await;
    let (_dir, app, ca, addr) = serving(&be, "deny = [\"127.0.0.0/8\"]\n").await;
    assert!(H3::try_connect(addr, "localhost", &ca).await.is_err(), "refused");
    let m = metrics(app.admin().expect("admin")).await;
    assert!(
        m.contains("rampart_quic_handshakes_started_total{listener=\"tls\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("rampart_connections_by_protocol_total{listener=\"tls\",protocol=\"HTTP/3\"} 0"),
        "{m}"
    );
    app.shutdown().await;
}

/// The Python with aioquic that `scripts/test` installs (`target/venv`),
/// or `RAMPART_AIOQUIC_PYTHON`.
fn aioquic_python() -> std::path::PathBuf {
    let p = std::env::var_os("RAMPART_AIOQUIC_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python"));
    assert!(
        p.exists(),
        "no {}: scripts/test installs aioquic into target/venv",
        p.display()
    );
    p
}

#[tokio::test]
async fn an_aioquic_client_gets_the_same_answers() {
    let be = echo_backend().await;
    let (_dir, app, ca, addr) = serving(&be, "").await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/h3_client.py");
    let out = tokio::process::Command::new(aioquic_python())
        .arg(&script)
        .args(["--ca", &ca.display().to_string(), "--sni", "localhost"])
        .arg(addr.to_string())
        .args([
            "GET:/app/one:0",
            "POST:/app/up:1048576",
            "GET:/app/big:0",
            "GET:/elsewhere:0",
            "GET:/app/admin/x:0",
            // A header section past `limits.max_header_bytes` (64 KiB).
            "GET:/app/big-head:0:100000",
        ])
        .output()
        .await
        .expect("aioquic client runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(answers.len(), 6, "{answers:?}");
    let status: Vec<i64> = answers
        .iter()
        .map(|a| a["status"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(status, [200, 200, 200, 404, 403, 431], "{answers:?}");
    assert!(answers[0]["text"]
        .as_str()
        .is_some_and(|t| t.starts_with("GET /app/one 0 ")));
    // The upload (bytes i % 251, as the client sends them) arrived whole.
    assert_eq!(
        answers[1]["text"],
        format!("POST /app/up 1048576 {}", sha256(&big()))
    );
    assert_eq!(answers[2]["length"], 1 << 20);
    assert_eq!(answers[2]["sha256"], sha256(&big()));
    app.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_new_handshakes_gets_retry_and_clients_are_still_served() {
    let be = echo_backend().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // More than 2 new handshakes in a second: Retry first.
    let toml = format!("[limits]\nquic_retry_above = 2\n{}", config(&be, true, ""));
    let app = start_app(&toml, dir.path()).await;
    let ca = app.local_ca.clone().expect("a local CA was created");
    let addr = listener(&app, "tls");
    let mut first = H3::connect(addr, "localhost", &ca).await;
    // 30 clients, each from a port of its own, one after the other: each
    // answers its Retry (quinn does) and is served.
    for i in 0..30 {
        let mut c = H3::connect(addr, "localhost", &ca).await;
        let (resp, _) = c.go("GET", &format!("/app/c{i}"), Bytes::new()).await;
        assert_eq!(resp.status(), 200);
    }
    // The connection made before the flood still works.
    let (resp, _) = first.go("GET", "/app/after", Bytes::new()).await;
    assert_eq!(resp.status(), 200);
    let m = metrics(app.admin().expect("admin")).await;
    let retries = counter(&m, "rampart_quic_retries_sent_total{listener=\"tls\"}");
    assert!(retries >= 1.0, "{m}");
    // Every connection completed its handshake once.
    assert!(
        m.contains("rampart_quic_handshakes_started_total{listener=\"tls\"} 31"),
        "{m}"
    );
    app.shutdown().await;

    // quic_retry_always: every new client.
    let toml = format!("[limits]\nquic_retry_always = true\n{}", config(&be, true, ""));
    let app = start_app(&toml, dir.path()).await;
    let addr = listener(&app, "tls");
    for _ in 0..3 {
        let mut c = H3::connect(addr, "localhost", &ca).await;
        assert_eq!(c.go("GET", "/app/x", Bytes::new()).await.0.status(), 200);
    }
    let m = metrics(app.admin().expect("admin")).await;
    assert!(
        m.contains("rampart_quic_retries_sent_total{listener=\"tls\"} 3"),
        "{m}"
    );
    app.shutdown().await;
}

/// The value of one sample line of a Prometheus text exposition.
fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

/// The DNS names of a certificate.
fn names(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a certificate");
    cert.subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| san.value.general_names.iter().map(|n| format!("{n}")).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn sni_picks_the_certificate_and_a_reload_reaches_new_quic_connections() {
    let be = echo_backend().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    crate::tls::issue_certs(d);
    let certs = |prefix: &str| {
        format!(
            "[[listener.certificate]]\ncert = \"{prefix}alpha.test.pem\"\nkey = \"{prefix}alpha.test.key\"\n\
             [[listener.certificate]]\ncert = \"{prefix}beta.test.pem\"\nkey = \"{prefix}beta.test.key\"\n"
        )
    };
    let path = d.join("rampart.toml");
    std::fs::write(&path, config(&be, true, &certs(""))).expect("write");
    let app = start_app_file(&path).await;
    let addr = listener(&app, "tls");
    for name in ["alpha.test", "beta.test"] {
        let mut c = H3::connect(addr, name, &d.join("ca.pem")).await;
        assert!(
            names(&c.leaf).iter().any(|n| n.contains(name)),
            "{name}: {:?}",
            names(&c.leaf)
        );
        assert_eq!(c.go("GET", "/app/sni", Bytes::new()).await.0.status(), 200);
    }
    // New certificates from another CA, and a reload: new QUIC
    // connections get them.
    let next = d.join("next");
    std::fs::create_dir_all(&next).expect("dir");
    crate::tls::issue_certs(&next);
    let toml = config(&be, true, &certs("next/")).replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&path, toml).expect("write");
    let (status, v) = admin(app.admin().expect("admin"), "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    let c = H3::connect(addr, "alpha.test", &next.join("ca.pem")).await;
    let want = std::fs::read_to_string(next.join("alpha.test.pem")).expect("pem");
    let want = rustls_pki_types::pem::PemObject::from_pem_slice(want.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .expect("a certificate");
    assert_eq!(c.leaf, want, "the reloaded certificate");
    // The old CA no longer verifies what the listener serves.
    assert!(H3::try_connect(addr, "alpha.test", &d.join("ca.pem"))
        .await
        .is_err());
    app.shutdown().await;
}

#[tokio::test]
async fn a_hundred_mebibytes_each_way_arrive_whole() {
    let be = echo_backend().await;
    let (_dir, app, ca, addr) = serving(&be, "").await;
    let mut c = H3::connect(addr, "localhost", &ca).await;
    let data = Bytes::from(huge());
    let want = sha256(&data);
    let (resp, body) = c.go("POST", "/app/up", data).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("POST /app/up {} {want}", 100usize << 20)
    );
    let (resp, body) = c.go("GET", "/app/huge", Bytes::new()).await;
    assert_eq!((resp.status().as_u16(), body.len()), (200, 100 << 20));
    assert_eq!(sha256(&body), want);
    app.shutdown().await;
}
