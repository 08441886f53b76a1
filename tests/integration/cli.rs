//! The command line: `check` errors name file, line and key; `--help` and
//! `--version`; `up` runs the demo stack; SIGTERM drains requests in flight.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::support::*;

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).expect("write");
    name.to_string()
}

const LISTENER: &str = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n";
const POOL: &str = "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\n";
const ROUTE: &str = "[[route]]\npool = \"p\"\n";
const OK: &str = concat!(
    "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n",
    "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\n",
    "[[route]]\npool = \"p\"\n"
);
const TLS_HEAD: &str =
    "[[listener]]\nname = \"t\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n[[listener.certificate]]\n";

#[test]
fn check_accepts_a_valid_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = write(dir.path(), "ok.toml", OK);
    let (code, out, err) = rampart(&["check", "-c", &f], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok.toml: ok"), "{out}");
}

#[test]
fn check_names_file_line_column_and_key_for_each_mistake() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("unreadable.key"), "").expect("write");
    // Certificate paths are printed resolved against the config's folder.
    let real = dir.path().canonicalize().expect("canonical tempdir");
    let garbage = format!(
        ":6:8: listener[0].certificate[0].cert: {} holds no PEM certificate",
        real.join("garbage.pem").display()
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown key", format!("{OK}[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:0\"\nbogus = 1\n"), ":13:1: listener[1]: unknown field `bogus`, expected one of `name`"),
        (
            "misspelt key",
            format!("{OK}[pool.health_check]\ntimout = \"1s\"\n"),
            ":11:1: pool[0].health_check: unknown field `timout`, did you mean `timeout`?",
        ),
        ("wrong type", "[runtime]\nworkers = \"four\"\n".into(), ":2:11: runtime.workers: invalid type: string \"four\", expected a whole number"),
        (
            "string weight",
            format!("{LISTENER}{POOL}weight = \"3\"\n{ROUTE}"),
            ":8:10: pool[0].server[0].weight: invalid type: string \"3\", expected a whole number",
        ),
        (
            "number for a duration",
            format!("[timeouts]\ndrain = 30\n{OK}"),
            ":2:9: timeouts.drain: invalid type: integer `30`, expected a duration such as \"30s\"",
        ),
        (
            "interval under the default timeout",
            format!("{OK}[pool.health_check]\ninterval = \"500ms\"\n"),
            ":11:12: pool[0].health_check.interval: the interval must be at least the timeout, which is 1s by default",
        ),
        ("bad duration", format!("[timeouts]\nconnect = \"5 parsecs\"\n{OK}"), ":2:11: timeouts.connect: unknown duration unit"),
        (
            "missing cert",
            format!("{TLS_HEAD}cert = \"nope.pem\"\nkey = \"nope.key\"\n{POOL}{ROUTE}"),
            ":6:8: listener[0].certificate[0].cert: cannot read certificate file",
        ),
        (
            "garbage cert",
            format!("{TLS_HEAD}cert = \"garbage.pem\"\nkey = \"unreadable.key\"\n{POOL}{ROUTE}"),
            &garbage,
        ),
        (
            "duplicate address",
            "[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:8080\"\n[[listener]]\nname = \"b\"\naddress = \"127.0.0.1:8080\"\n".into(),
            ":6:11: listener[1].address: address 127.0.0.1:8080 is already used by listener `a`",
        ),
        ("undefined pool", format!("{LISTENER}{POOL}[[route]]\npool = \"nope\"\n"), ":9:8: route[0].pool: no pool is named `nope` (pools defined: p)"),
        ("empty pool", format!("{OK}[[pool]]\nname = \"empty\"\n"), ":11:8: pool[1].server: pool `empty` has no servers"),
        (
            "zero weight",
            "[[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\nweight = 0\n".into(),
            ":5:10: pool[0].server[0].weight: weight must be at least 1",
        ),
        ("bad address", "[[listener]]\nname = \"a\"\naddress = \"nowhere\"\n".into(), ":3:11: listener[0].address: `nowhere` is not an address"),
        ("toml syntax", "[[listener]\n".into(), ":1:"),
    ];
    for (what, text, want) in cases {
        let f = write(dir.path(), "bad.toml", &text);
        let (code, _, err) = rampart(&["check", "-c", &f], dir.path());
        assert_eq!(code, 2, "{what}: exit code; stderr: {err}");
        assert!(
            err.contains(&format!("bad.toml{want}")),
            "{what}: expected `bad.toml{want}` in:\n{err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    let (code, _, err) = rampart(&["check", "-c", "missing.toml"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml: cannot read the config file"), "{err}");
}

#[test]
fn check_reports_expired_and_mismatched_certificates() {
    use rcgen::{CertificateParams, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec!["old.test".to_string()]).expect("params");
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = p.self_signed(&key).expect("cert");
    write(dir.path(), "old.pem", &cert.pem());
    write(dir.path(), "old.key", &key.serialize_pem());
    let f = write(
        dir.path(),
        "certs.toml",
        &format!("{TLS_HEAD}cert = \"old.pem\"\nkey = \"old.key\"\nnames = [\"new.test\"]\n{POOL}{ROUTE}"),
    );
    let (code, _, err) = rampart(&["check", "-c", &f], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("old.pem: the certificate expired"), "{err}");
    assert!(
        err.contains("configured for `new.test` but does not hold that name"),
        "{err}"
    );
}

#[test]
fn every_command_has_help_and_there_is_a_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, _) = rampart(&["--version"], dir.path());
    assert_eq!(code, 0);
    assert!(out.starts_with("rampart "), "{out}");
    for cmd in [
        &["--help"][..],
        &["up", "--help"],
        &["run", "--help"],
        &["check", "--help"],
    ] {
        let (code, out, err) = rampart(cmd, dir.path());
        assert_eq!(code, 0, "{cmd:?}: {err}");
        assert!(out.contains("Usage: rampart"), "{cmd:?}: {out}");
    }
}

#[test]
fn example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = rampart(&["check", "-c", "examples/rampart.toml"], root);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"), "{out}");
}

#[tokio::test]
async fn up_runs_the_demo_stack_on_free_ports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rp = Process::spawn(
        &[
            "up",
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--web-port",
            "0",
            "--state-dir",
            "st",
            "--admin-port",
            "0",
            "--workers",
            "2",
        ],
        dir.path(),
    );
    let ca = dir.path().join("st/tls/ca.pem");
    assert!(ca.exists());
    // The demo checks its web servers: each shows as up, not unknown
    // (until their first check, the pool waits for them).
    let ad = rp.addr("admin");
    let up = wait_until(std::time::Duration::from_secs(15), || async {
        let (_, v) = admin(ad, "GET", "/api/pools", None).await;
        v["pools"][0]["servers"]
            .as_array()
            .is_some_and(|s| s.len() == 3 && s.iter().all(|x| x["health"] == "up"))
    })
    .await;
    let (_, pools) = admin(ad, "GET", "/api/pools", None).await;
    assert!(up.is_some(), "{pools}");
    let mut names = Vec::new();
    for _ in 0..3 {
        let (status, body) = get_h2(rp.addr("https"), &ca).await;
        assert_eq!(status, 200);
        let name = ["web-01", "web-02", "web-03"]
            .into_iter()
            .find(|n| body.contains(&format!("class=\"server\">{n}<")))
            .expect("page names its server");
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["web-01", "web-02", "web-03"]);
    let mut plain = h1(rp.addr("http")).await;
    let (status, headers, _) = read(plain.go(get("/", "localhost")).await.expect("redirect")).await;
    assert_eq!(status, 308);
    assert_eq!(
        headers["location"],
        format!("https://localhost:{}/", rp.addr("https").port())
    );
    // The web servers answer only TLS with a client certificate from the
    // demo's CA: plain HTTP and TLS without a certificate get no page.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn page<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) -> String {
        let _ = s
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
    for web in ["web-01", "web-02", "web-03"] {
        let addr = rp.addr(web);
        let plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let got = page(plain).await;
        assert!(
            !got.contains("200 OK") && !got.contains("class=\"server\""),
            "plain HTTP to {web}: {got}"
        );
        let tls = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let cfg = {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pki_types::CertificateDer::pem_file_iter(&ca).expect("ca") {
                roots.add(c.expect("cert")).expect("root");
            }
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
        };
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let got = match tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tls)
            .await
        {
            Ok(s) => page(s).await,
            Err(e) => format!("handshake refused: {e}"),
        };
        assert!(
            !got.contains("200 OK"),
            "TLS without a client certificate to {web}: {got}"
        );
    }
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let arrived = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (a, r) = (arrived.clone(), release.clone());
    let be = Backend::start(move |_req| {
        let (a, r) = (a.clone(), r.clone());
        async move {
            a.notify_one();
            r.notified().await;
            http::Response::new(full("finished"))
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[admin]\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            be.addr
        ),
    )
    .expect("config");
    let mut rp = Process::run(&cfg, dir.path());
    let mut client = h1(rp.addr("web")).await;
    let pending = tokio::spawn(async move { read(client.go(get("/", "x")).await.expect("response")).await });
    arrived.notified().await;
    rp.signal("TERM");
    // The listener closes while the request is still in flight.
    let addr = rp.addr("web");
    let refused = wait_until(std::time::Duration::from_secs(2), || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(refused.is_some(), "rampart kept accepting after SIGTERM");
    release.notify_one();
    let (status, _, body) = pending.await.expect("task");
    assert_eq!((status, body.as_str()), (200, "finished"));
    let code = tokio::task::spawn_blocking(move || rp.child.wait().expect("wait"))
        .await
        .expect("join");
    assert_eq!(code.code(), Some(0));
}

#[test]
fn top_exits_non_zero_when_the_admin_api_cannot_be_reached() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bind one, then close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    for args in [
        vec!["top", "--admin", &closed, "--once"],
        vec!["top", "--admin", &closed],
    ] {
        let (code, out, err) = rampart(&args, dir.path());
        assert_eq!(code, 1, "{args:?}: stdout {out} stderr {err}");
        assert!(
            err.contains(&format!("error: cannot reach the admin API at {closed}")),
            "{args:?}: {err}"
        );
        assert!(!out.contains("rampart top"), "{args:?}: a frame was drawn: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_exits_non_zero_when_the_admin_api_refuses_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!("[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"0123456789abcdef-secret\"\n{OK}");
    let app = start_app(&toml, dir.path()).await;
    let ad = app.admin().expect("admin").to_string();
    let d = dir.path().to_path_buf();
    let (code, _, err) = tokio::task::spawn_blocking(move || rampart(&["top", "--admin", &ad, "--once"], &d))
        .await
        .expect("join");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused the token (401)"), "{err}");
    app.shutdown().await;
}

#[test]
fn certificate_errors_print_the_path_resolved_against_the_config_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().canonicalize().expect("canonical tempdir");
    std::fs::create_dir_all(dir.path().join("conf")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("certs")).expect("mkdir");
    std::fs::write(dir.path().join("certs/site.pem"), "not a certificate").expect("write");
    std::fs::write(dir.path().join("certs/site.key"), "").expect("write");
    let cases = [
        // (cert, key, the path the message must name)
        (
            "../certs/missing.pem",
            "../certs/site.key",
            real.join("certs/missing.pem"),
        ),
        (
            "./../certs/site.pem",
            "../certs/site.key",
            real.join("certs/site.pem"),
        ),
    ];
    for (cert, key, want) in cases {
        let text = format!("{TLS_HEAD}cert = \"{cert}\"\nkey = \"{key}\"\n{POOL}{ROUTE}");
        write(&dir.path().join("conf"), "bad.toml", &text);
        // Run from the temporary folder: the paths are relative to conf/, not to it.
        let (code, _, err) = rampart(&["check", "-c", "conf/bad.toml"], dir.path());
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("conf/bad.toml:6:8: listener[0].certificate[0].cert: "),
            "{err}"
        );
        let want = format!(" {}", want.display());
        assert!(err.contains(&want), "expected `{want}` in:\n{err}");
        assert!(!err.contains(".."), "{err}");
    }
}

#[test]
fn ca_init_issue_and_list_make_certificates_that_chain_to_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let state = state.to_str().expect("utf-8 path");
    let (code, out, err) = rampart(&["ca", "init", "--state-dir", state], dir.path());
    assert_eq!(code, 0, "{err}");
    let ca = format!("{state}/tls/ca.pem");
    assert!(out.contains(&ca), "{out}");
    let args = [
        "ca",
        "issue",
        "web1",
        "--san",
        "web1.internal",
        "--san",
        "127.0.0.1",
        "--state-dir",
        state,
    ];
    let (code, out, err) = rampart(&args, dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web1.pem") && out.contains("valid until"), "{out}");
    let key = std::fs::metadata(format!("{state}/tls/issued/web1-key.pem")).expect("key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    // openssl agrees that it chains to the CA, for a server.
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile", &ca])
        .arg(format!("{state}/tls/issued/web1.pem"))
        .output()
        .expect("openssl");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let (code, out, _) = rampart(&["ca", "list", "--state-dir", state], dir.path());
    assert_eq!(code, 0);
    assert!(
        out.contains("web1") && out.contains("web1.internal, 127.0.0.1"),
        "{out}"
    );
    // A name that is not a file name is refused.
    let (code, _, err) = rampart(&["ca", "issue", "../x", "--state-dir", state], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("is not a certificate name"), "{err}");
}

#[test]
fn check_warns_about_expiry_unverifiable_chains_ca_files_and_refuses_short_rsa_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let openssl = |args: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && openssl {args}", d.display()))
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A self-signed leaf (no CA in its chain) valid for 10 more days, and a
    // 1024-bit RSA one.
    openssl(
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 10 -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
         -keyout soon-key.pem -out soon.pem",
    );
    openssl(
        "req -x509 -newkey rsa:1024 -nodes -days 90 -subj /CN=localhost -keyout weak-key.pem -out weak.pem",
    );
    let config = |cert: &str| {
        format!(
            "[[listener]]\nname = \"s\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             [[listener.certificate]]\ncert = \"{cert}.pem\"\nkey = \"{cert}-key.pem\"\n\
             [[pool]]\nname = \"p\"\n[pool.tls]\nca = \"soon.pem\"\n[[pool.server]]\naddress = \"127.0.0.1:9\"\n\
             [[route]]\npool = \"p\"\n"
        )
    };
    let f = write(d, "soon.toml", &config("soon"));
    let (code, out, err) = rampart(&["check", "-c", &f], d);
    assert_eq!(code, 0, "warnings do not fail the check: {err}");
    assert!(out.contains("ok"), "{out}");
    let soon = err.contains("expires in 9 days") || err.contains("expires in 10 days");
    assert!(err.contains("listener `s`") && soon, "{err}");
    assert!(err.contains("the chain does not verify"), "{err}");
    // In words, not rustls's debug form.
    assert!(!err.contains("Other(") && !err.contains("OtherError"), "{err}");
    assert!(
        err.contains("pool `p` tls.ca") && err.contains("holds no CA certificate"),
        "{err}"
    );
    let f = write(d, "weak.toml", &config("weak"));
    let (code, _, err) = rampart(&["check", "-c", &f], d);
    assert_eq!(code, 2);
    assert!(err.contains("1024-bit RSA key is too weak"), "{err}");
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = rampart(&["completions", shell], dir.path());
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in ["run", "check", "reload", "firewall", "completions"] {
            assert!(out.contains(sub), "{shell} completions lack `{sub}`");
        }
    }
    let (code, _, err) = rampart(&["completions", "tcsh"], dir.path());
    assert_eq!(code, 2, "an unknown shell is refused: {err}");
    assert!(err.contains("tcsh"), "{err}");
    let (code, man, err) = rampart(&["man"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(man.contains(".TH rampart 1"), "{man}");
    assert!(
        man.contains(".SH SUBCOMMANDS") && man.contains("completions"),
        "{man}"
    );
}

#[tokio::test]
async fn proxy_serves_https_in_front_of_its_servers_without_a_config_file() {
    let be = Backend::named("app-1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let to = be.addr.to_string();
    // What it would run, as a config a user can keep: valid as it is.
    let (code, toml, err) = rampart(&["proxy", "--to", &to, "--print-config"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        toml.contains(&format!("address = \"{to}\"")) && toml.contains("[pool.health_check]"),
        "{toml}"
    );
    std::fs::write(dir.path().join("kept.toml"), &toml).expect("write");
    let (code, out, err) = rampart(&["check", "-c", "kept.toml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    // Values are written as TOML strings, whatever they hold.
    let odd = "st \"quoted\" \\ \u{e9}\u{7f}";
    let (code, toml, err) = rampart(
        &["proxy", "--to", &to, "--state-dir", odd, "--print-config"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let parsed: toml::Table = toml.parse().unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(parsed["runtime"]["state_dir"].as_str(), Some(odd), "{toml}");
    // A bare port is every address, as `:PORT` is; anything else that is
    // not an address is refused naming --from.
    for bare in ["21443", ":21443"] {
        let (code, toml, err) = rampart(
            &["proxy", "--to", &to, "--from", bare, "--print-config"],
            dir.path(),
        );
        assert_eq!(code, 0, "{err}");
        assert!(toml.contains("address = \"0.0.0.0:21443\""), "{toml}");
    }
    let (code, out, err) = rampart(&["proxy", "--to", &to, "--from", "localhost"], dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--from localhost: give IP:PORT"), "{err}");
    let rp = Process::spawn(
        &[
            "proxy",
            "--to",
            &to,
            "--from",
            "127.0.0.1:0",
            "--admin-port",
            "0",
            "--state-dir",
            "st",
        ],
        dir.path(),
    );
    let ca = dir.path().join("st/tls/ca.pem");
    let ad = rp.addr("admin");
    // Told as `up` tells it: a URL the certificate matches, curl, the dashboard.
    let port = rp.addr("https").port();
    let url = format!("https://localhost:{port}/");
    let said = |needles: &[&str]| rp.banner.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(said(&["load balancer:", &url]), "{}", rp.banner);
    assert!(said(&["curl --cacert", "ca.pem", &url]), "{}", rp.banner);
    assert!(said(&["dashboard:", "http://127.0.0.1:"]), "{}", rp.banner);
    assert!(!rp.banner.contains("0.0.0.0"), "{}", rp.banner);
    wait_ready(ad).await;
    let (status, body) = get_h2(rp.addr("https"), &ca).await;
    assert_eq!(status, 200);
    assert!(body.contains("app-1"), "{body}");
    let (_, pools) = admin(ad, "GET", "/api/pools", None).await;
    assert_eq!(pools["pools"][0]["servers"][0]["health"], "up", "{pools}");
}

/// `GET /` over HTTP/2 and TLS to `addr` as `localhost`, trusting `ca`.
async fn get_h2(addr: std::net::SocketAddr, ca: &Path) -> (u16, String) {
    let tls = tls_connect(addr, "localhost", ca, &[b"h2"]).await;
    let mut c = h2_over(tls).await;
    let req = http::Request::get(format!("https://localhost:{}/", addr.port()))
        .body(full(""))
        .expect("req");
    let (status, _, body) = read(c.go(req).await.expect("response")).await;
    (status, body)
}

/// `examples/audit/weak.toml` triggers every finding the catalog holds (one
/// acknowledged), fails the audit and says why in text and JSON;
/// `examples/audit/clean.toml` passes with none.
#[test]
fn audit_finds_every_weak_point_of_the_weak_example_and_none_in_the_clean_one() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audit");
    let (code, out, err) = rampart(
        &[
            "audit",
            "-c",
            "weak.toml",
            "--host",
            "lb1",
            "--no-live",
            "--format",
            "json",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let found: std::collections::BTreeSet<&str> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    // The fleet's findings need a running fleet: fleet::a_push_reaches_every_instance_under_load_and_the_fleet_reports_it.
    let all: std::collections::BTreeSet<&str> = rampart::audit::CATALOG
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !id.starts_with("fleet-"))
        .collect();
    assert_eq!(found, all, "every finding, each at least once");
    for f in doc["findings"].as_array().expect("findings") {
        for key in ["severity", "subject", "reason", "mitigation"] {
            assert!(
                f[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} missing in {f}"
            );
        }
    }
    let acked: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f.get("acknowledged").is_some())
        .collect();
    assert_eq!(acked.len(), 1, "{acked:?}");
    assert_eq!(acked[0]["id"], "egress-open");
    assert_eq!(doc["summary"]["acknowledged"], 1);
    assert!(doc["summary"]["high"].as_u64().is_some_and(|n| n > 0));
    // The text report names the finding, its subject, its reason and the fix.
    let (code, text, _) = rampart(&["audit", "-c", "weak.toml", "--host", "lb1", "--no-live"], &dir);
    assert_eq!(code, 1);
    assert!(text.contains("HIGH   db-single-writer"), "{text}");
    assert!(text.contains("fix: add a replica"), "{text}");
    assert!(
        text.contains("acknowledged:\n  LOW    egress-open — lb2: lb2 is being rebuilt"),
        "{text}"
    );
    // --fail-on: only what is at least that severe fails.
    let (code, _, _) = rampart(&["audit", "-c", "clean.toml", "--fail-on", "low"], &dir);
    assert_eq!(code, 0);
    let (code, out, err) = rampart(&["audit", "-c", "clean.toml", "--format", "json"], &dir);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["findings"], serde_json::json!([]), "{out}");
    // A config that does not load is exit status 2, as for `rampart check`.
    let bad = tempfile::tempdir().expect("tempdir");
    let path = write(
        bad.path(),
        "bad.toml",
        "[[audit.ack]]\nid = \"nope\"\nreason = \"x\"\n",
    );
    let (code, _, err) = rampart(&["audit", "-c", &path], bad.path());
    assert_eq!(code, 2);
    assert!(err.contains("audit.ack[0].id: unknown finding `nope`"), "{err}");
}

/// `rampart plan` describes every host of the topology in text and JSON,
/// and writes the diagram; without a `[topology]` it says so.
#[test]
fn plan_describes_each_host_in_text_json_and_svg() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/audit");
    let out = tempfile::tempdir().expect("tempdir");
    let svg = out.path().join("plan.svg");
    let (code, text, err) = rampart(
        &["plan", "-c", "clean.toml", "--svg", &svg.display().to_string()],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("9 hosts,"), "{text}");
    assert!(text.contains("db1 [db] 10.0.3.1"), "{text}");
    assert!(text.contains("from web1, web2, app1, app2"), "{text}");
    let drawn = std::fs::read_to_string(&svg).expect("svg written");
    assert!(drawn.starts_with("<svg ") && drawn.contains("data-name=\"mon1\""));
    let (code, json, _) = rampart(&["plan", "-c", "clean.toml", "--format", "json"], &dir);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let hosts = doc["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 9);
    let db1 = hosts.iter().find(|h| h["name"] == "db1").expect("db1");
    assert_eq!(db1["tier"], "db");
    assert_eq!(db1["monitored_by"], serde_json::json!(["mon1"]));
    assert!(doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .any(|e| e["from"] == "internet" && e["to"] == "lb1"));
    let none = tempfile::tempdir().expect("tempdir");
    let path = write(none.path(), "r.toml", "[admin]\nenabled = false\n");
    let (code, _, err) = rampart(&["plan", "-c", &path], none.path());
    assert_eq!(code, 2);
    assert!(err.contains("no [topology] section"), "{err}");
}

#[test]
fn a_config_that_would_serve_nothing_is_a_warning_to_check_and_an_error_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [("empty.toml", ""), ("pool-only.toml", POOL)] {
        let path = write(dir.path(), name, text);
        let (code, out, err) = rampart(&["check", "-c", &path], dir.path());
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("ok (0 listeners, "), "{out}");
        assert!(
            err.contains("warning:") && err.contains("no [[listener]]"),
            "{err}"
        );
        let (code, _, err) = rampart(&["run", "-c", &path], dir.path());
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("error:") && err.contains(name) && err.contains("would serve nothing"),
            "{err}"
        );
    }
    let path = write(dir.path(), "one.toml", OK);
    let (code, out, err) = rampart(&["check", "-c", &path], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ok (1 listener, 1 pool, 1 route, 0 origins)"),
        "{out}"
    );
}
