//! The web application firewall in the request path: rules in
//! ModSecurity's language from `[waf] rules`, over HTTP/1.1 and HTTP/2;
//! a denial is a 403 naming the rule and the request id, `detect` mode
//! only logs, and a rule rampart cannot run is a load error naming the
//! file and line.

use crate::support::*;

const RULES: &str = r#"# A site's own rules, anomaly scoring as the Core Rule Set does it.
SecDefaultAction "phase:2,pass,log"
SecAction "id:900110,phase:1,pass,nolog,setvar:tx.inbound_anomaly_score_threshold=5"
SecRule ARGS|REQUEST_COOKIES "@rx <script" \
    "id:941100,phase:2,block,t:none,t:urlDecodeUni,t:htmlEntityDecode,t:lowercase,\
    msg:'XSS in %{MATCHED_VAR_NAME}',setvar:'tx.anomaly_score=+5'"
SecRule REQUEST_HEADERS:User-Agent "@pm sqlmap nikto" \
    "id:913100,phase:1,block,t:lowercase,msg:'a scanner',setvar:'tx.anomaly_score=+5'"
SecRule TX:ANOMALY_SCORE "@ge %{tx.inbound_anomaly_score_threshold}" \
    "id:949110,phase:2,deny,msg:'Inbound Anomaly Score Exceeded (Total Score: %{TX.ANOMALY_SCORE})'"
"#;

fn config(mode: &str, be: std::net::SocketAddr) -> String {
    format!(
        "[waf]\nrules = [\"rules/*.conf\"]\nmode = \"{mode}\"\n\
         [access_log]\nenabled = true\nformat = \"json\"\npath = \"access-{mode}.log\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{be}\"\n[[route]]\npool = \"p\"\n"
    )
}

#[tokio::test]
async fn the_waf_denies_what_its_rules_deny_and_lets_the_rest_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("dir");
    std::fs::write(dir.path().join("rules/site.conf"), RULES).expect("rules");
    let be = Backend::named("site").await;
    let app = start_app(&config("block", be.addr), dir.path()).await;
    let web = listener(&app, "web");

    let mut c = h1(web).await;
    let (status, _, body) = read(
        c.go(get("/search?q=shoes&page=2", "site.test"))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "site"));

    for (path, ua) in [
        ("/search?q=%3CScRiPt%3Ealert(1)", "curl/8"),
        ("/search?q=%26lt%3Bscript%26gt%3B", "curl/8"),
        ("/", "sqlmap/1.7"),
    ] {
        let mut c = h1(web).await;
        let req = http::Request::get(path)
            .header("host", "site.test")
            .header("user-agent", ua)
            .header("x-request-id", "waf-test-1")
            .body(full(""))
            .expect("request");
        let (status, _, body) = read(c.go(req).await.expect("answer")).await;
        assert_eq!(status, 403, "{path} {ua}: {body}");
        assert!(
            body.contains("rule 949110") && body.contains("waf-test-1"),
            "{path}: {body}"
        );
    }
    // A cookie is inspected too.
    let mut c = h1(web).await;
    let req = http::Request::get("/")
        .header("host", "site.test")
        .header("cookie", "pref=%3Cscript%3E")
        .body(full(""))
        .expect("request");
    assert_eq!(read(c.go(req).await.expect("answer")).await.0, 403);
    // Counted by the rule that denied them.
    let m = metrics(app.admin().expect("admin")).await;
    assert!(m.contains("rampart_waf_blocked_total{rule=\"949110\"} 4"), "{m}");
    // The access log names the rules and the score of each denial.
    let entries = log_entries(&dir.path().join("access-block.log"), 5).await;
    assert!(entries[0].get("waf_rules").is_none(), "{}", entries[0]);
    for e in &entries[1..4] {
        assert_eq!(e["status"], 403, "{e}");
        assert_eq!(e["waf_denied"], true, "{e}");
        assert_eq!(e["waf_anomaly_score"], 5, "{e}");
        let rules = e["waf_rules"].as_array().expect("waf_rules");
        assert_eq!(rules.last(), Some(&serde_json::json!(949110)), "{e}");
        assert!(
            rules.len() == 2,
            "the rule that scored and the one that denied: {e}"
        );
    }
    assert_eq!(entries[3]["waf_rules"][0], 913100);
    assert_eq!(entries[1]["waf_messages"][0], "XSS in ARGS:q");
    app.shutdown().await;

    // detect: the same request goes through.
    let app = start_app(&config("detect", be.addr), dir.path()).await;
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    let (status, _, _) = read(
        c.go(get("/search?q=%3Cscript%3E", "site.test"))
            .await
            .expect("ok"),
    )
    .await;
    assert_eq!(status, 200);
    let entries = log_entries(&dir.path().join("access-detect.log"), 1).await;
    assert_eq!(entries[0]["waf_denied"], false, "{}", entries[0]);
    assert_eq!(entries[0]["waf_rules"], serde_json::json!([941100, 949110]));
    app.shutdown().await;
}

/// The first `n` lines of a JSON access log, once they are written.
async fn log_entries(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let written = wait_until(std::time::Duration::from_secs(5), || async {
        std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            >= n
    })
    .await;
    assert!(written.is_some(), "{} has fewer than {n} lines", path.display());
    std::fs::read_to_string(path)
        .expect("log")
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn a_rule_the_waf_cannot_run_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("dir");
    std::fs::write(
        dir.path().join("rules/site.conf"),
        "SecRule ARGS \"@rx a\" \"id:1,phase:2,deny\"\n\nSecRule ARGS \"@verifyCC \\\\d+\" \"id:2,phase:2,deny\"\n",
    )
    .expect("rules");
    std::fs::write(
        dir.path().join("rampart.toml"),
        config("block", "127.0.0.1:9".parse().expect("addr")),
    )
    .expect("config");
    let (code, _, err) = rampart(&["check", "-c", "rampart.toml"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("waf.rules")
            && err.contains("site.conf:3: SecRule: operator @verifyCC is not supported"),
        "{err}"
    );
}

#[tokio::test]
async fn http2_requests_go_through_the_same_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("dir");
    std::fs::write(dir.path().join("rules/site.conf"), RULES).expect("rules");
    let be = Backend::named("site").await;
    let toml = format!(
        "[runtime]\nstate_dir = \"state\"\n[[listener]]\nname = \"tls\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n{}",
        config("block", be.addr)
    );
    let app = start_app(&toml, dir.path()).await;
    let ca = dir.path().join("state/tls/ca.pem");
    let tls = listener(&app, "tls");
    let send = |path: &'static str| {
        let ca = ca.clone();
        async move {
            let mut c = h2_over(tls_connect(tls, "localhost", &ca, &[b"h2"]).await).await;
            let req = http::Request::get(format!("https://localhost{path}"))
                .header("x-request-id", "waf-h2")
                .body(full(""))
                .expect("request");
            read(c.send_request(req).await.expect("answer")).await
        }
    };
    let (status, _, body) = send("/?q=shoes").await;
    assert_eq!((status, body.as_str()), (200, "site"));
    let (status, _, body) = send("/?q=%3Cscript%3E").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("rule 949110") && body.contains("waf-h2"), "{body}");
    app.shutdown().await;
}

/// Debian's `modsecurity-crs` package, as `scripts/test` installs it.
const CRS_SETUP: &str = "/etc/modsecurity/crs/crs-setup.conf";
const CRS_RULES: &str = "/usr/share/modsecurity-crs/rules/*.conf";

fn crs_config(be: std::net::SocketAddr, extra_waf: &str) -> String {
    format!(
        "[waf]\nrules = [\"{CRS_SETUP}\", \"{CRS_RULES}\"]\nparanoia = 1\n{extra_waf}\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\naddress = \"{be}\"\n\
         [[route]]\npath = \"/internal\"\npool = \"p\"\nwaf = \"off\"\n\
         [[route]]\npath = \"/notes\"\npool = \"p\"\nwaf_exclude = [\"tag:attack-sqli ARGS:comment\"]\n\
         [[route]]\npool = \"p\"\n"
    )
}

async fn send(
    web: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut c = h1(web).await;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "site.test")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("accept", "text/html,application/xhtml+xml");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let (status, _, body) = read(
        c.go(req.body(full(body)).expect("request"))
            .await
            .expect("answer"),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn the_core_rule_set_inspects_queries_bodies_and_cookies_and_routes_choose() {
    if !std::path::Path::new(CRS_SETUP).exists() {
        panic!("{CRS_SETUP} is missing: scripts/test installs Debian's modsecurity-crs");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let be = Backend::echo_length().await;
    let app = start_app(&crs_config(be.addr, "body_limit = \"16KiB\""), dir.path()).await;
    let web = listener(&app, "web");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let json = [("content-type", "application/json")];

    // Benign traffic goes through, bodies whole.
    let ok = |path: &str, n: usize| (200, format!("{path} {n}"));
    assert_eq!(
        send(web, "GET", "/search?q=running+shoes&page=2", &[], vec![]).await,
        ok("/search", 0)
    );
    let body = b"name=Ann+Lee&email=ann%40example.com&message=See+you+at+5".to_vec();
    let n = body.len();
    assert_eq!(
        send(web, "POST", "/contact", &form, body).await,
        ok("/contact", n)
    );
    let body = br#"{"user":{"name":"Ann","tags":["a","b"]},"count":3}"#.to_vec();
    let n = body.len();
    assert_eq!(
        send(web, "POST", "/api/users", &json, body).await,
        ok("/api/users", n)
    );

    // Attacks in a query, a form body, a JSON body, a multipart upload and a cookie.
    let sqli = "1' OR '1'='1' --";
    let (status, body) = send(
        web,
        "GET",
        "/item?id=1%27%20OR%20%271%27%3D%271%27%20--",
        &[],
        vec![],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("rule 949110"), "{body}");
    let form_attack = format!(
        "comment={}",
        sqli.replace(' ', "+").replace('\'', "%27").replace('=', "%3D")
    );
    assert_eq!(
        send(web, "POST", "/post", &form, form_attack.clone().into_bytes())
            .await
            .0,
        403
    );
    let json_attack = br#"{"profile":{"bio":"<script>alert(document.cookie)</script>"}}"#.to_vec();
    assert_eq!(send(web, "POST", "/api/users", &json, json_attack).await.0, 403);
    let multipart = b"--BND\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"shell.php\"\r\nContent-Type: application/octet-stream\r\n\r\n<?php system($_GET['c']); ?>\r\n--BND--\r\n".to_vec();
    let (status, body) = send(
        web,
        "POST",
        "/upload",
        &[("content-type", "multipart/form-data; boundary=BND")],
        multipart,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = send(
        web,
        "GET",
        "/",
        &[("cookie", "session=../../../../etc/passwd")],
        vec![],
    )
    .await;
    assert_eq!(status, 403);

    // A route with the WAF off, and one that excludes a field from the SQLi rules.
    assert_eq!(
        send(
            web,
            "POST",
            "/internal/post",
            &form,
            form_attack.clone().into_bytes()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        send(web, "POST", "/notes/add", &form, form_attack.into_bytes())
            .await
            .0,
        200
    );
    let other_field = format!("title={}", "1%27+OR+%271%27%3D%271%27+--");
    assert_eq!(
        send(web, "POST", "/notes/add", &form, other_field.into_bytes())
            .await
            .0,
        403
    );

    // Every denial counted by the rule that made it (the anomaly score's).
    let m = metrics(app.admin().expect("admin")).await;
    assert!(m.contains("rampart_waf_blocked_total{rule=\"949110\"} 6"), "{m}");

    // Past the inspection limit: refused (413) by default.
    let big = format!("data={}", "a".repeat(20 * 1024)).into_bytes();
    assert_eq!(send(web, "POST", "/post", &form, big.clone()).await.0, 413);
    app.shutdown().await;

    // With `inspect`, the first 16 KiB are inspected and the whole is forwarded.
    let app = start_app(
        &crs_config(be.addr, "body_limit = \"16KiB\"\nbody_limit_action = \"inspect\""),
        dir.path(),
    )
    .await;
    let web = listener(&app, "web");
    let n = big.len();
    assert_eq!(send(web, "POST", "/post", &form, big).await, ok("/post", n));
    app.shutdown().await;
}

/// The differential harness (`bench/waf-compare/run.py`) on a sample of its
/// corpus: Apache with ModSecurity 2 and rampart, both with Debian's Core
/// Rule Set, at paranoia levels 1 and 2. The full corpus (5,200 requests)
/// runs from `bench/`; its figures are in docs/waf.md.
#[test]
fn rampart_and_modsecurity_agree_on_a_sample_of_the_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = dir.path().join("summary.json");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/waf-compare/run.py");
    let out = std::process::Command::new("python3")
        .args([
            script,
            "--rampart",
            env!("CARGO_BIN_EXE_rampart"),
            "--requests",
            "400",
            "--paranoia",
            "1",
            "2",
            "--report",
        ])
        .arg(dir.path().join("report.md"))
        .arg("--json")
        .arg(&summary)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let levels: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary")).expect("json");
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap_or_default();
    for (level, want) in [(1, 0.99), (2, 0.97)] {
        let l = levels
            .iter()
            .find(|l| l["paranoia"] == level)
            .expect("level in the summary");
        let n = l["requests"].as_f64().unwrap_or(0.0);
        let agree = l["agree"].as_f64().unwrap_or(0.0);
        assert!(n >= 400.0 && agree / n >= want, "paranoia {level}: {l}\n{report}");
        // The corpus is not trivial: both engines block many of its
        // attacks and let most benign requests through.
        let attacks = l["attacks"].as_f64().unwrap_or(0.0);
        assert!(l["modsec_detect"].as_f64().unwrap_or(0.0) > attacks * 0.3, "{l}");
        assert!(l["rampart_detect"].as_f64().unwrap_or(0.0) > attacks * 0.3, "{l}");
        assert!(
            l["rampart_fp"].as_f64().unwrap_or(1e9) < l["benign"].as_f64().unwrap_or(0.0) * 0.2,
            "{l}"
        );
    }
}

#[tokio::test]
async fn waf_denials_are_firewall_events_and_count_towards_a_ban() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("dir");
    std::fs::write(dir.path().join("rules/site.conf"), RULES).expect("rules");
    let be = Backend::named("site").await;
    let toml = format!(
        "[bans]\nafter = 3\nwindow = \"60s\"\nduration = \"10m\"\n{}",
        config("block", be.addr)
    );
    let app = start_app(&with_test_admin(&toml), dir.path()).await;
    let web = listener(&app, "web");
    let ad = app.admin().expect("admin");
    for _ in 0..3 {
        let resp = raw(
            web,
            b"GET /?q=%3Cscript%3E HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    }
    // The fourth connection, benign as it is, finds the client banned.
    let refused = match tokio::net::TcpStream::connect(web).await {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
            let mut buf = [0u8; 16];
            matches!(
                tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await,
                Ok(Ok(0)) | Ok(Err(_))
            )
        }
    };
    assert!(refused, "a client with three WAF denials is banned");
    let (_, v) = admin(ad, "GET", "/api/bans", None).await;
    assert_eq!(v["bans"][0]["address"], "127.0.0.1", "{v}");
    let mut c = h1(ad).await;
    let stats: serde_json::Value =
        serde_json::from_str(&read(c.go(get("/api/stats", "x")).await.expect("stats")).await.2)
            .expect("json");
    let recent = stats["firewall"]["recent_events"].as_array().expect("events");
    assert!(
        recent
            .iter()
            .any(|e| e["rule"] == "waf 941100" || e["rule"] == "waf 949110"),
        "{recent:?}"
    );
    app.shutdown().await;
}

#[test]
fn the_core_rule_set_loads_at_every_paranoia_level_and_says_what_does_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    for level in 1..=4 {
        std::fs::write(
            dir.path().join("rampart.toml"),
            format!("[waf]\nrules = [\"{CRS_SETUP}\", \"{CRS_RULES}\"]\nparanoia = {level}\n"),
        )
        .expect("config");
        let (code, out, err) = rampart(&["check", "-c", "rampart.toml"], dir.path());
        assert_eq!(code, 0, "paranoia {level}: {err}");
        assert!(out.contains(": ok"), "{out}");
        // What loads without effect is said, never skipped silently.
        assert!(
            err.contains(
                "rules of phases 3-5 (response headers, response body, logging) are loaded and not run"
            ) && err.contains("rule 910100: @geoLookup (no GeoIP database) never matches")
                && err.contains("SecCollectionTimeout has no effect"),
            "{err}"
        );
    }
}
