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
    app.shutdown().await;
}

#[test]
fn a_rule_the_waf_cannot_run_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("rules")).expect("dir");
    std::fs::write(
        dir.path().join("rules/site.conf"),
        "SecRule ARGS \"@rx a\" \"id:1,phase:2,deny\"\n\nSecRule ARGS \"@detectSQLi\" \"id:2,phase:2,deny\"\n",
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
            && err.contains("site.conf:3: SecRule: operator @detectSQLi is not supported"),
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
