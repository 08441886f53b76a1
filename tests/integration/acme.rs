//! Certificates from a real ACME server: Pebble (the Debian package),
//! with its own test root for its API and a fake DNS (pebble-challtestsrv)
//! that sends every name to 127.0.0.1, validating rampart's listener
//! through TLS-ALPN-01. No shortcut skips validation.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_issues_the_listener_s_certificate_through_tls_alpn_01() {
    issued_by_pebble("tls-alpn-01", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_issues_the_listener_s_certificate_through_http_01() {
    issued_by_pebble("http-01", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_replaces_the_certificate_while_requests_go_on() {
    // Certificates that live 30 s: renewed at two thirds, about 20 s in.
    issued_by_pebble("tls-alpn-01", Some(30)).await;
}

/// Pebble validates rampart through `challenge` (its TLS-ALPN-01 checks go
/// to the https listener, its HTTP-01 checks to the plain one).
/// With `validity` (seconds), Pebble's certificates are that short-lived,
/// and a bounded load runs until one is renewed.
/// A running Pebble and its fake DNS, on free ports: its API (trusted
/// through `api_ca`), and the ports it validates on (`https_port` for
/// TLS-ALPN-01, `http_port` for HTTP-01) where rampart must listen.
pub(crate) struct Pebble {
    pub(crate) api_port: u16,
    mgmt_port: u16,
    pub(crate) https_port: u16,
    pub(crate) http_port: u16,
    pub(crate) api_ca: std::path::PathBuf,
    _procs: (Proc, Proc),
}

impl Pebble {
    pub(crate) async fn start(d: &std::path::Path, validity: Option<u64>) -> Pebble {
        // Pebble's own HTTPS certificate, from a CA of the test's.
        let pebble_state = d.join("pebble");
        let api = rampart::tls::ca::issue(
            &pebble_state,
            "pebble",
            &["localhost".to_string(), "127.0.0.1".to_string()],
            30,
            false,
        )
        .expect("pebble cert");
        let (https_port, api_port, mgmt_port, http_port, dns_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_udp_port(),
        );
        let config = format!(
            r#"{{"pebble": {{"listenAddress": "127.0.0.1:{api_port}", "managementListenAddress": "127.0.0.1:{mgmt_port}",
                "certificate": "{}", "privateKey": "{}", "httpPort": {http_port}, "tlsPort": {https_port},
                "ocspResponderURL": "", "externalAccountBindingRequired": false{}}}}}"#,
            api.cert_path.display(),
            api.key_path.display(),
            validity.map_or(String::new(), |v| format!(", \"certificateValidityPeriod\": {v}"))
        );
        std::fs::write(d.join("pebble.json"), config).expect("config");
        let dns = Proc(
            Command::new("pebble-challtestsrv")
                .args([
                    "-dns01",
                    &format!("127.0.0.1:{dns_port}"),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                ])
                .args([
                    "-management",
                    &format!("127.0.0.1:{}", free_port()),
                    "-defaultIPv6",
                    "",
                ])
                .args(["-defaultIPv4", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble-challtestsrv (Debian package pebble)"),
        );
        let pebble = Proc(
            Command::new("pebble")
                .args(["-config", &d.join("pebble.json").display().to_string()])
                .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdout(std::fs::File::create(d.join("pebble.log")).expect("log"))
                .stderr(std::fs::File::create(d.join("pebble.err")).expect("log"))
                .spawn()
                .expect("pebble (Debian package pebble)"),
        );
        let up = wait_until(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", api_port))
                .await
                .is_ok()
        })
        .await;
        assert!(up.is_some(), "pebble did not start");
        Pebble {
            api_port,
            mgmt_port,
            https_port,
            http_port,
            api_ca: pebble_state.join("tls/ca.pem"),
            _procs: (dns, pebble),
        }
    }

    /// Pebble's root (from its management interface), written to `d`.
    pub(crate) async fn root(&self, d: &std::path::Path) -> std::path::PathBuf {
        let mgmt: SocketAddr = format!("127.0.0.1:{}", self.mgmt_port).parse().expect("addr");
        let mut c = h1_over(tls_connect(mgmt, "localhost", &self.api_ca, &[b"http/1.1"]).await).await;
        let (status, _, root) = read(c.go(get("/roots/0", "localhost")).await.expect("root")).await;
        assert_eq!(status, 200);
        let root_file = d.join("pebble-root.pem");
        std::fs::write(&root_file, root).expect("root");
        root_file
    }

    fn log(&self, d: &std::path::Path) -> String {
        std::fs::read_to_string(d.join("pebble.log")).unwrap_or_default()
            + &std::fs::read_to_string(d.join("pebble.err")).unwrap_or_default()
    }
}

async fn issued_by_pebble(challenge: &str, validity: Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Ports are picked free, then bound by Pebble and rampart: another
    // test may take one in between, so the start is tried up to 3 times.
    let be = Backend::named("site").await;
    let mut attempt = 0;
    let (app, pebble) = loop {
        attempt += 1;
        let pebble = Pebble::start(d, validity).await;
        let toml = format!(
            "[runtime]\nstate_dir = \"state\"\n\
             [[listener]]\nname = \"plain\"\naddress = \"127.0.0.1:{}\"\n\
             [[listener]]\nname = \"site\"\naddress = \"127.0.0.1:{}\"\nprotocol = \"https\"\n\
             [listener.acme]\ndirectory = \"https://127.0.0.1:{}/dir\"\nnames = [\"site.rampart.test\"]\n\
             email = \"ops@rampart.test\"\ndirectory_ca = \"{}\"\nchallenge = \"{challenge}\"\n\
             [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            pebble.http_port,
            pebble.https_port,
            pebble.api_port,
            pebble.api_ca.display(),
            be.addr
        );
        let model =
            rampart::config::load_str(&with_test_admin(&toml), "test.toml", d, &rampart::tls::SystemEnv)
                .expect("valid config");
        match rampart::app::RunningApp::start(&model).await {
            Ok(app) => break (app, pebble),
            Err(e) if attempt < 3 => eprintln!("start failed ({e}), trying other ports"),
            Err(e) => panic!("rampart starts: {e}"),
        }
    };
    let https_port = pebble.https_port;
    let site: SocketAddr = format!("127.0.0.1:{https_port}").parse().expect("addr");
    let root_file = pebble.root(d).await;
    // The local certificate serves until Pebble's is issued; then a client
    // that trusts only Pebble's root verifies the listener.
    let issued = wait_until(Duration::from_secs(30), || {
        let root_file = root_file.clone();
        async move {
            try_tls_connect(site, "site.rampart.test", &root_file, &[b"http/1.1"])
                .await
                .is_ok()
        }
    })
    .await;
    assert!(issued.is_some(), "no certificate from Pebble\n{}", pebble.log(d));
    // The certificate-expiry metric (and so its alert) follows the issued
    // certificate, not the local one served before it.
    let ad = app.admin().expect("admin");
    let metrics = read(h1(ad).await.go(get("/metrics", "x")).await.expect("metrics"))
        .await
        .2;
    let line = "rampart_certificate_expiry_seconds{listener=\"site\",certificate=\"site.rampart.test\"}";
    assert!(metrics.contains(line), "{metrics}");
    if validity.is_some() {
        // Requests over new TLS connections, 20 a second, until the served
        // certificate changes (at most 40 s): none may fail.
        let root = root_file.clone();
        let first = served_cert(site, &root).await.expect("served");
        let mut changed = false;
        for i in 0..800 {
            let tls = try_tls_connect(site, "site.rampart.test", &root, &[b"http/1.1"])
                .await
                .unwrap_or_else(|e| panic!("request {i}: TLS failed during renewal: {e}"));
            let now = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first().cloned());
            let mut c = h1_over(tls).await;
            let (status, _, _) = read(c.go(get("/", "site.rampart.test")).await.expect("response")).await;
            assert_eq!(status, 200, "request {i} during renewal");
            if now.is_some_and(|n| n != first) {
                changed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(changed, "the certificate was not renewed within 40 s");
    }
    let stored = d.join("state/acme/site/cert.pem");
    assert!(stored.exists(), "stored in the state directory");
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(d.join("state/acme/site/key.pem"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    app.shutdown().await;
}

/// The leaf certificate served on `addr`, verified against `root`.
async fn served_cert(
    addr: SocketAddr,
    root: &std::path::Path,
) -> Option<rustls::pki_types::CertificateDer<'static>> {
    let tls = try_tls_connect(addr, "site.rampart.test", root, &[b"http/1.1"])
        .await
        .ok()?;
    tls.get_ref().1.peer_certificates()?.first().cloned()
}

/// `rampart proxy --domain NAME --acme-directory URL`: the one-line proxy
/// gets its certificate from the ACME CA (here Pebble), with no config file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_proxy_gets_a_certificate_for_its_domain_from_the_acme_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let be = Backend::named("app").await;
    let pebble = Pebble::start(d, None).await;
    let from = format!("127.0.0.1:{}", pebble.https_port);
    let directory = format!("https://127.0.0.1:{}/dir", pebble.api_port);
    let to = be.addr.to_string();
    let ca = pebble.api_ca.display().to_string();
    let args = [
        "proxy",
        "--to",
        &to,
        "--from",
        &from,
        "--domain",
        "app.rampart.test",
        "--acme-directory",
        &directory,
        "--acme-ca",
        &ca,
        "--email",
        "ops@rampart.test",
        "--admin-port",
        "0",
        "--state-dir",
        "state",
    ];
    let (code, printed, err) = rampart(&[&args[..], &["--print-config"]].concat(), d);
    assert_eq!(code, 0, "{err}");
    assert!(
        printed.contains("[listener.acme]") && printed.contains("names = [\"app.rampart.test\"]"),
        "{printed}"
    );
    let proc = Process::spawn(&args, d);
    let root = pebble.root(d).await;
    let site: SocketAddr = from.parse().expect("addr");
    let served = wait_until(Duration::from_secs(30), || {
        let root = root.clone();
        async move {
            try_tls_connect(site, "app.rampart.test", &root, &[b"h2", b"http/1.1"])
                .await
                .is_ok()
        }
    })
    .await;
    assert!(served.is_some(), "no certificate from Pebble\n{}", pebble.log(d));
    let tls = try_tls_connect(site, "app.rampart.test", &root, &[b"h2", b"http/1.1"])
        .await
        .expect("verified against Pebble's root");
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "HTTP/2 is offered"
    );
    drop(proc);
    // Without a CA of one's own, a name only this machine resolves is refused.
    let (code, _, err) = rampart(
        &["proxy", "--to", &to, "--from", ":443", "--domain", "localhost"],
        d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`localhost` resolves only to") && err.contains("public ACME CA cannot reach"),
        "{err}"
    );
}
