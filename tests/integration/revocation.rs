//! Certificate revocation lists from openssl: a client certificate its CA
//! revoked is refused by an https listener with `client_crl` (nothing
//! reaches a backend), a list replaced and reloaded refuses the newly
//! revoked, an expired list fails closed (or open, when asked), and a
//! backend whose certificate is revoked gets no request (`[pool.tls] crl`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Runs a shell script in `dir`; panics with its output unless it succeeds.
fn sh(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An openssl CA in `dir` (`ca.pem`, `ca.key`, its database), client
/// certificates `alice`, `bob` and `carol`, and server certificates
/// `srv1` and `srv2` for 127.0.0.1.
fn openssl_ca(dir: &Path) {
    std::fs::write(
        dir.join("ca.cnf"),
        "[ ca ]\ndefault_ca = test\n[ test ]\ndir = .\ndatabase = index.txt\nnew_certs_dir = .\n\
         certificate = ca.pem\nprivate_key = ca.key\nserial = serial\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 30\npolicy = any\n[ any ]\ncommonName = supplied\n",
    )
    .expect("ca.cnf");
    sh(
        dir,
        r#"
touch index.txt; echo 1000 > serial; echo 01 > crlnumber
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days 30 -subj "/CN=Test Client CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for c in alice bob carol; do
  openssl req -new $ec -keyout $c.key -out $c.csr -subj "/CN=$c" 2>/dev/null
  printf "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n" > $c.ext
  openssl x509 -req -in $c.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $c.pem -days 30 -extfile $c.ext 2>/dev/null
done
for s in srv1 srv2; do
  openssl req -new $ec -keyout $s.key -out $s.csr -subj "/CN=$s" 2>/dev/null
  printf "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n" > $s.ext
  openssl x509 -req -in $s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $s.pem -days 30 -extfile $s.ext 2>/dev/null
done
"#,
    );
}

/// Revokes `certs` and writes the CA's list to `out`.
fn revoke(dir: &Path, certs: &[&str], out: &str) {
    let mut script = String::new();
    for c in certs {
        script.push_str(&format!(
            "openssl ca -config ca.cnf -revoke {c}.pem 2>/dev/null\n"
        ));
    }
    script.push_str(&format!(
        "openssl ca -config ca.cnf -gencrl -out {out} 2>/dev/null\n"
    ));
    sh(dir, &script);
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A GET over TLS to `addr` showing `who`'s certificate (from `dir`),
/// trusting `server_ca`: the status, or None when the handshake or the
/// request failed.
async fn get_as(addr: SocketAddr, dir: &Path, who: &str, server_ca: &Path) -> Option<u16> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(server_ca).expect("ca") {
        roots.add(c.expect("cert")).expect("root");
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join(format!("{who}.pem")))
        .expect("chain")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{who}.key"))).expect("key");
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client cert");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut s = connector.connect(name, tcp).await.ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn config(web: &str, extra: &str, backend: SocketAddr) -> String {
    format!(
        "[runtime]\nstate_dir = \"state\"\n\
         [[listener]]\nname = \"tls\"\naddress = \"{web}\"\nprotocol = \"https\"\n\
         client_auth = \"required\"\nclient_ca = \"ca.pem\"\nclient_crl = \"crl.pem\"\n{extra}\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{backend}\"\n[[route]]\npool = \"p\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_client_certificates_are_refused_and_a_new_list_is_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl_ca(d);
    revoke(d, &["alice"], "crl.pem");
    let be = Backend::named("be").await;
    let path = d.join("rampart.toml");
    std::fs::write(&path, config("127.0.0.1:0", "", be.addr)).expect("write");
    let app = start_app_file(&path).await;
    let (tls, admin_addr) = (listener(&app, "tls"), app.admin().expect("admin"));
    let server_ca = d.join("state/tls/ca.pem");
    assert_eq!(
        get_as(tls, d, "alice", &server_ca).await,
        None,
        "alice is revoked"
    );
    assert_eq!(be.hits(), 0, "nothing of alice's reached the backend");
    assert_eq!(get_as(tls, d, "bob", &server_ca).await, Some(200));
    assert_eq!(get_as(tls, d, "carol", &server_ca).await, Some(200));
    assert_eq!(be.hits(), 2);
    // Bob is revoked too: a new list, and a reload.
    revoke(d, &["bob"], "crl.pem");
    std::fs::write(&path, config(&tls.to_string(), "", be.addr)).expect("write");
    let (status, v) = admin(admin_addr, "POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        get_as(tls, d, "bob", &server_ca).await,
        None,
        "bob is revoked now"
    );
    assert_eq!(get_as(tls, d, "alice", &server_ca).await, None);
    assert_eq!(get_as(tls, d, "carol", &server_ca).await, Some(200));
    assert_eq!(be.hits(), 3);
    app.shutdown().await;
}

/// A list past its nextUpdate: `rampart check` warns; the listener
/// refuses every client certificate (fail_closed, the default), or goes on
/// using the list (fail_open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_list_fails_closed_unless_told_to_fail_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl_ca(d);
    sh(
        d,
        "openssl ca -config ca.cnf -revoke alice.pem 2>/dev/null\n\
         openssl ca -config ca.cnf -gencrl -crl_lastupdate 200101000000Z -crl_nextupdate 200102000000Z -out crl.pem 2>/dev/null",
    );
    let be = Backend::named("be").await;
    let closed = config("127.0.0.1:0", "", be.addr);
    std::fs::write(d.join("closed.toml"), &closed).expect("write");
    let (code, out, err) = rampart(&["check", "-c", "closed.toml"], d);
    assert_eq!(code, 0, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("listener `tls` client_crl")
            && said.contains("crl.pem expired on")
            && said.contains("fail_closed"),
        "{said}"
    );
    let app = start_app(&closed, d).await;
    let server_ca = d.join("state/tls/ca.pem");
    let tls = listener(&app, "tls");
    assert_eq!(get_as(tls, d, "bob", &server_ca).await, None, "fail_closed");
    app.shutdown().await;
    let open = config("127.0.0.1:0", "crl_expired = \"fail_open\"\n", be.addr);
    let app = start_app(&open, d).await;
    let tls = listener(&app, "tls");
    assert_eq!(get_as(tls, d, "bob", &server_ca).await, Some(200), "fail_open");
    assert_eq!(get_as(tls, d, "alice", &server_ca).await, None, "still revoked");
    app.shutdown().await;
}

/// A TLS backend with `srvN`'s certificate, answering its name.
async fn tls_backend(dir: &Path, name: &'static str) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
        .expect("chain")
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).expect("key");
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("cert");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else { return };
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(full(name)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// A backend whose certificate its CA revoked gets no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_with_a_revoked_certificate_gets_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl_ca(d);
    revoke(d, &["srv2"], "crl.pem");
    let (one, two) = (tls_backend(d, "srv1").await, tls_backend(d, "srv2").await);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"good\"\n[pool.tls]\nca = \"ca.pem\"\ncrl = \"crl.pem\"\n[[pool.server]]\nname = \"srv1\"\naddress = \"{one}\"\n\
         [[pool]]\nname = \"revoked\"\n[pool.tls]\nca = \"ca.pem\"\ncrl = \"crl.pem\"\n[[pool.server]]\nname = \"srv2\"\naddress = \"{two}\"\n\
         [[route]]\npath = \"/revoked\"\npool = \"revoked\"\n[[route]]\npool = \"good\"\n"
    );
    let app = start_app(&toml, d).await;
    let mut c = h1(listener(&app, "web")).await;
    let (status, _, body) = read(c.go(get("/", "x")).await.expect("response")).await;
    assert_eq!((status, body.as_str()), (200, "srv1"));
    let (status, _, _) = read(c.go(get("/revoked", "x")).await.expect("response")).await;
    assert_eq!(status, 502);
    let text = metrics(app.admin().expect("admin")).await;
    assert_eq!(
        metric(
            &text,
            "rampart_backend_tls_failures_total{pool=\"revoked\",server=\"srv2\"}"
        ),
        Some(1.0)
    );
    app.shutdown().await;
}
