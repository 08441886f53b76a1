//! TLS and mTLS from rampart to its backends (`[pool.tls]`): real rustls
//! servers on loopback that require a client certificate from rampart's
//! internal CA, a server whose certificate another CA signed, key pins,
//! HTTP/2 over TLS, connection reuse, and health checks over TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::support::*;

/// A TLS backend: answers with the HTTP version it saw; counts its TLS
/// connections.
struct TlsBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Of those, the ones that resumed an earlier TLS session.
    resumed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn chain_and_key(cert_pem: &[u8], key_pem: &[u8]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("chain");
    (chain, PrivateKeyDer::from_pem_slice(key_pem).expect("key"))
}

/// Serves TLS with `cert_pem`/`key_pem`; with `client_ca`, only clients
/// with a certificate from that CA get through.
async fn tls_backend(cert_pem: &[u8], key_pem: &[u8], client_ca: Option<&Path>) -> TlsBackend {
    tls_backend_with(cert_pem, key_pem, client_ca, true).await
}

/// The same; without `keep_alive`, each connection closes after one answer.
async fn tls_backend_with(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca: Option<&Path>,
    keep_alive: bool,
) -> TlsBackend {
    let (chain, key) = chain_and_key(cert_pem, key_pem);
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).expect("ca") {
                roots.add(c.expect("ca cert")).expect("root");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key).expect("server cert");
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let resumed = Arc::new(AtomicUsize::new(0));
    let (count, resumptions) = (connections.clone(), resumed.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (acceptor, count, resumptions) = (acceptor.clone(), count.clone(), resumptions.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else { return };
                count.fetch_add(1, Ordering::SeqCst);
                if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                    resumptions.fetch_add(1, Ordering::SeqCst);
                }
                let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(Response::new(full(format!("{:?}", req.version()))))
                });
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                }
            });
        }
    });
    TlsBackend {
        addr,
        connections,
        resumed,
        task,
    }
}

/// A CA of its own and a certificate for 127.0.0.1 it signed.
fn other_ca_cert() -> (String, String) {
    let (_, leaf, key) = ca_and_leaf("another CA", &["127.0.0.1"]);
    (leaf.pem(), key.serialize_pem())
}

// One worker thread: idle connections are pooled per thread, so that
// reuse shows as exactly one connection.
#[tokio::test]
async fn mtls_backends_serve_rampart_over_reused_connections_and_refuse_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // The internal CA and a server certificate for 127.0.0.1 it signed.
    let local = rampart::tls::ca::ensure_local_cert(&state).expect("internal CA");
    let leaf = std::fs::read(state.join("tls/localhost.pem")).expect("leaf");
    let leaf_key = std::fs::read(state.join("tls/localhost-key.pem")).expect("leaf key");
    let mtls = tls_backend(&leaf, &leaf_key, Some(&local.ca_path)).await;
    let (other_cert, other_key) = other_ca_cert();
    let stranger = tls_backend(other_cert.as_bytes(), other_key.as_bytes(), None).await;
    let h2 = tls_backend(&leaf, &leaf_key, Some(&local.ca_path)).await;
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"secure\"\n[pool.tls]\nca = \"internal\"\nclient_cert = \"internal\"\n\
         [[pool.server]]\naddress = \"{}\"\n\
         [[pool]]\nname = \"wrong\"\n[pool.tls]\nca = \"internal\"\nclient_cert = \"internal\"\n\
         [[pool.server]]\nname = \"stranger\"\naddress = \"{}\"\n\
         [[pool]]\nname = \"two\"\nprotocol = \"h2\"\n[pool.tls]\nca = \"internal\"\nclient_cert = \"internal\"\n\
         [[pool.server]]\naddress = \"{}\"\n\
         [[route]]\npath = \"/wrong\"\npool = \"wrong\"\n[[route]]\npath = \"/two\"\npool = \"two\"\n\
         [[route]]\npool = \"secure\"\n",
        mtls.addr, stranger.addr, h2.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    for _ in 0..20 {
        let (status, _, body) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!((status, body.as_str()), (200, "HTTP/1.1"));
    }
    assert_eq!(
        mtls.connections.load(Ordering::SeqCst),
        1,
        "twenty requests over one pooled TLS connection"
    );
    // The admin API (and the dashboard, from it) says how each server is
    // reached, and until when the certificate it showed is valid.
    let ad = app.admin().expect("admin");
    let info = server_info(ad, "secure", &mtls.addr.to_string())
        .await
        .expect("server");
    assert_eq!(info["tls"], "mTLS", "{info}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let expires = info["cert_expires"].as_i64().expect("cert_expires");
    assert!(expires > now && expires < now + 400 * 86_400, "{info}");
    // HTTP/2 over TLS (ALPN h2).
    let (status, _, body) = read(c.go(get("/two", "x")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "HTTP/2.0"));
    // A server whose certificate another CA signed gets no request.
    let (status, _, _) = read(c.go(get("/wrong", "x")).await.expect("response")).await;
    assert_eq!(status, 502);
    assert_eq!(
        stranger.connections.load(Ordering::SeqCst),
        0,
        "no request reached it"
    );
    let text = read(h1(ad).await.go(get("/metrics", "x")).await.expect("metrics"))
        .await
        .2;
    let failures = metric(
        &text,
        "rampart_backend_tls_failures_total{pool=\"wrong\",server=\"stranger\"}",
    );
    assert_eq!(failures, Some(1.0), "{text}");
    // The API (and the dashboard) says why, not only how many.
    let stranger_info = server_info(ad, "wrong", "stranger").await.expect("server");
    assert_eq!(stranger_info["tls_failures"], 1, "{stranger_info}");
    let why = stranger_info["last_tls_failure"]["reason"].as_str().unwrap_or("");
    assert!(why.to_lowercase().contains("certificate"), "{stranger_info}");
    // Without rampart's client certificate, the mTLS backend refuses.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut s = tls_connect(mtls.addr, "127.0.0.1", &local.ca_path, &[b"http/1.1"]).await;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut buf = [0u8; 64];
        !matches!(s.read(&mut buf).await, Ok(n) if n > 0)
    })
    .await;
    assert_eq!(refused, Ok(true), "a client without a certificate got an answer");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_and_health_checks_use_the_pool_s_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let local = rampart::tls::ca::ensure_local_cert(&state).expect("internal CA");
    let leaf = std::fs::read(state.join("tls/localhost.pem")).expect("leaf");
    let leaf_key = std::fs::read(state.join("tls/localhost-key.pem")).expect("leaf key");
    let be = tls_backend(&leaf, &leaf_key, None).await;
    // The leaf's real pin, as openssl computes it.
    let pin = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -r",
            state.join("tls/localhost.pem").display()
        ))
        .output()
        .expect("openssl");
    let pin = String::from_utf8_lossy(&pin.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string();
    assert_eq!(pin.len(), 64, "{pin}");
    let zeros = "0".repeat(64);
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"pinned\"\n[pool.tls]\nca = \"{ca}\"\nserver_name = \"localhost\"\npin_sha256 = [\"{pin}\"]\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\n\
         [[pool.server]]\nname = \"ok\"\naddress = \"{a}\"\n\
         [[pool]]\nname = \"mispinned\"\n[pool.tls]\nca = \"{ca}\"\npin_sha256 = [\"{zeros}\"]\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nfall = 1\n\
         [[pool.server]]\nname = \"bad\"\naddress = \"{a}\"\n\
         [[route]]\npath = \"/bad\"\npool = \"mispinned\"\n[[route]]\npool = \"pinned\"\n",
        ca = local.ca_path.display(),
        a = be.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin");
    // The check verifies the certificate and the pin: one server comes up,
    // the other goes down.
    let up = wait_until(std::time::Duration::from_secs(5), || async {
        let ok = server_info(ad, "pinned", "ok").await;
        let bad = server_info(ad, "mispinned", "bad").await;
        let health = |v: Option<serde_json::Value>| v.map(|v| v["health"].as_str().unwrap_or("").to_string());
        health(ok).as_deref() == Some("up") && health(bad).as_deref() == Some("down")
    })
    .await;
    assert!(up.is_some(), "health verdicts over TLS");
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    let status = read(c.go(get("/bad", "x")).await.expect("response")).await.0;
    assert!(
        status == 502 || status == 503,
        "a pin that does not match: {status}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_require_client_certificates_and_refuse_revoked_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let toml = "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[origin]]\nname = \"site\"\naddress = \"127.0.0.1:0\"\ndemo = true\n\
         [origin.tls]\ncert = \"internal\"\nclient_ca = \"internal\"\n\
         [[pool]]\nname = \"p\"\n[pool.tls]\nca = \"internal\"\nclient_cert = \"internal\"\n\
         [[pool.server]]\norigin = \"site\"\n[[route]]\npool = \"p\"\n";
    let app = start_app(toml, dir.path()).await;
    let site = app
        .origins
        .iter()
        .find(|o| o.name == "site")
        .expect("origin")
        .addr;
    assert_eq!(
        app.origins.iter().find(|o| o.name == "site").map(|o| o.scheme),
        Some("https")
    );
    // rampart reaches its own origin over mTLS.
    let mut c = h1(listener(&app, "web")).await;
    assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    // A client certificate from the same CA gets the page, until revoked.
    let alice = rampart::tls::ca::issue(&state, "alice", &["alice".to_string()], 30, true).expect("issue");
    let ca = state.join("tls/ca.pem");
    let with_alice = Some((alice.cert_path.as_path(), alice.key_path.as_path()));
    let page = front_get(site, &ca, with_alice, "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    rampart::tls::ca::revoke(&state, "alice").expect("revoke");
    let page = front_get(site, &ca, with_alice, "/", "").await;
    assert!(!page.contains("200 OK"), "a revoked certificate got {page}");
    // rampart's own certificate is not revoked: a new connection still works.
    let mut fresh = h1(listener(&app, "web")).await;
    assert_eq!(
        read(fresh.go(get("/", "y")).await.expect("response")).await.0,
        200
    );
    app.shutdown().await;
}

/// An HTTPS request with optional client certificate and extra header
/// lines; the answer, or why there was none.
async fn front_get(
    addr: SocketAddr,
    ca: &Path,
    cert: Option<(&Path, &Path)>,
    path: &str,
    extra: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("root");
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match cert {
        None => b.with_no_client_auth(),
        Some((c, k)) => {
            let (chain, key) =
                chain_and_key(&std::fs::read(c).expect("cert"), &std::fs::read(k).expect("key"));
            b.with_client_auth_cert(chain, key).expect("client cert")
        }
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut s = match tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) => return format!("refused: {e}"),
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    match tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await {
        Ok(Ok(_)) => String::from_utf8_lossy(&out).into_owned(),
        Ok(Err(e)) => format!("refused: {e}"),
        Err(_) => "no answer".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_identities_reach_backends_and_forged_ones_do_not() {
    // The backend answers with the identity headers it received.
    let be = Backend::start(|req| async move {
        let h = |n: &str| {
            req.headers().get(n).map_or("-".to_string(), |v| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            })
        };
        Response::new(full(format!(
            "subject={} san={} sha256={}",
            h("x-client-cert-subject"),
            h("x-client-cert-san"),
            h("x-client-cert-sha256")
        )))
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // A rule on the open listener that matches alice's verified subject.
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n\
         [[listener]]\nname = \"strict\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         client_auth = \"required\"\nclient_ca = \"internal\"\n\
         [[listener]]\nname = \"open\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
         client_auth = \"optional\"\nclient_ca = \"internal\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n\
         [[rule]]\nname = \"no-alice-on-admin\"\naction = \"deny\"\n\
         [rule.match]\npath_prefix = \"/admin\"\nheader = {{ name = \"x-client-cert-subject\", equals = \"CN=alice.example\" }}\n",
        be.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let ca = state.join("tls/ca.pem");
    let alice =
        rampart::tls::ca::issue(&state, "alice", &["alice.example".to_string()], 30, true).expect("issue");
    let forged =
        "X-Client-Cert-Subject: CN=root\r\nX-Client-Cert-San: DNS:evil\r\nX-Client-Cert-Sha256: 00\r\n";
    let strict = listener(&app, "strict");
    // With a certificate: the verified identity, not the forged one.
    let alice_cert = Some((alice.cert_path.as_path(), alice.key_path.as_path()));
    let page = front_get(strict, &ca, alice_cert, "/", forged).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("subject=CN=alice.example"), "{page}");
    assert!(page.contains("san=DNS:alice.example"), "{page}");
    assert!(!page.contains("CN=root") && !page.contains("evil"), "{page}");
    let sha = page
        .split("sha256=")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    assert_eq!(sha.len(), 64, "{page}");
    // Without one: refused by the required listener...
    let page = front_get(strict, &ca, None, "/", "").await;
    assert!(!page.contains("200 OK"), "{page}");
    // ...served by the optional one, with no identity and the forged
    // headers removed.
    let open = listener(&app, "open");
    let page = front_get(open, &ca, None, "/", forged).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("subject=- san=- sha256=-"), "{page}");
    // Firewall rules match the verified identity, never a forged one.
    let page = front_get(open, &ca, alice_cert, "/admin", "").await;
    assert!(page.starts_with("HTTP/1.1 403"), "{page}");
    let copied = "X-Client-Cert-Subject: CN=alice.example\r\n";
    let page = front_get(open, &ca, None, "/admin", copied).await;
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "a forged subject matched a rule: {page}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn keys_readable_by_others_stop_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    rampart::tls::ca::ensure_ca(&state).expect("CA");
    let key = state.join("tls/ca-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let toml = "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
                [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\n[[route]]\npool = \"p\"\n";
    let model =
        rampart::config::load_str(toml, "test.toml", dir.path(), &rampart::tls::SystemEnv).expect("config");
    let Err(err) = rampart::app::RunningApp::start(&model).await else {
        panic!("started with a key readable by others");
    };
    let text = err.to_string();
    assert!(text.contains("ca-key.pem") && text.contains("0600"), "{text}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let app = rampart::app::RunningApp::start(&model).await.expect("starts");
    app.shutdown().await;
}

#[tokio::test]
async fn new_connections_to_a_backend_resume_the_tls_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    rampart::tls::ca::ensure_local_cert(&state).expect("internal CA");
    let leaf = std::fs::read(state.join("tls/localhost.pem")).expect("leaf");
    let leaf_key = std::fs::read(state.join("tls/localhost-key.pem")).expect("leaf key");
    // A backend that closes its connection after every answer.
    let be = tls_backend_with(&leaf, &leaf_key, None, false).await;
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[pool.tls]\nca = \"internal\"\n[[pool.server]]\naddress = \"{}\"\n\
         [[route]]\npool = \"p\"\n",
        be.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let mut c = h1(listener(&app, "web")).await;
    for _ in 0..4 {
        assert_eq!(read(c.go(get("/", "x")).await.expect("response")).await.0, 200);
    }
    assert_eq!(
        be.connections.load(Ordering::SeqCst),
        4,
        "one connection per answer"
    );
    assert_eq!(
        be.resumed.load(Ordering::SeqCst),
        3,
        "every connection after the first resumed"
    );
    app.shutdown().await;
}

/// A CA of the test's own, a server certificate for 127.0.0.1 and client
/// certificates named `clients` it signed, written to `dir` as
/// `ca.pem`, `server.pem`/`server-key.pem` and `NAME.pem`/`NAME-key.pem`.
fn test_pki(dir: &Path, clients: &[&str]) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let issue = |name: &str, sans: Vec<String>| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut p = rcgen::CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("signed");
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).expect("write");
    };
    issue("server", vec!["127.0.0.1".to_string()]);
    for c in clients {
        issue(c, Vec::new());
    }
}

/// A TLS backend (HTTP/1.1 and h2) that requires a client certificate
/// from `dir/ca.pem` and answers with its common name.
async fn names_its_client(dir: &Path) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (chain, key) = chain_and_key(
        &std::fs::read(dir.join("server.pem")).expect("cert"),
        &std::fs::read(dir.join("server-key.pem")).expect("key"),
    );
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).expect("ca") {
        roots.add(c.expect("ca cert")).expect("root");
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .expect("verifier");
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .expect("server cert");
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else { return };
                let name = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| {
                        let (_, x) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
                        let cn = x.subject().iter_common_name().next()?.as_str().ok()?.to_string();
                        Some(cn)
                    })
                    .unwrap_or_default();
                let svc = service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                    let name = name.clone();
                    async move { Ok::<_, std::convert::Infallible>(Response::new(full(name))) }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Two pools reach the same address over HTTP/2 with different client
/// certificates: each request goes out on a connection of its own pool,
/// with that pool's certificate (connections are not keyed by address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_address_each_show_their_own_client_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    test_pki(dir.path(), &["pool-one", "pool-two"]);
    let (addr, task) = names_its_client(dir.path()).await;
    let pool = |name: &str, client: &str| {
        format!(
            "[[pool]]\nname = \"{name}\"\nprotocol = \"h2\"\n\
             [pool.tls]\nca = \"ca.pem\"\nclient_cert = \"{client}.pem\"\nclient_key = \"{client}-key.pem\"\n\
             [[pool.server]]\nname = \"s\"\naddress = \"{addr}\"\n"
        )
    };
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n{}{}\
         [[route]]\npath = \"/one\"\npool = \"one\"\n[[route]]\npath = \"/two\"\npool = \"two\"\n",
        pool("one", "pool-one"),
        pool("two", "pool-two")
    );
    let app = start_app(&toml, dir.path()).await;
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    for _ in 0..5 {
        for (path, want) in [("/one", "pool-one"), ("/two", "pool-two")] {
            let (status, _, body) = read(c.go(get(path, "x")).await.expect("response")).await;
            assert_eq!((status, body.as_str()), (200, want), "{path}");
        }
    }
    task.abort();
    app.shutdown().await;
}
