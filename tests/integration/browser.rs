//! The dashboard in real headless Chromium, driven over the DevTools
//! protocol: it shows live QPS and every server with its health, and why a
//! database writer endpoint refuses connections, without a console error;
//! a screenshot is saved as a test artifact.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A DevTools connection: commands by id, events kept for later.
struct Cdp {
    ws: Ws,
    next: u64,
    events: Vec<Value>,
}

impl Cdp {
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("send to chromium");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("chromium answers")
                .expect("open")
                .expect("frame");
            let Ok(text) = frame.into_text() else { continue };
            let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }
}

/// Headless Chromium with a blank page, its DevTools connection and the
/// page's session (runtime, log and page events on).
struct Browser {
    chromium: std::process::Child,
    cdp: Cdp,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("tempdir");
        let mut chromium = Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium (Debian package chromium) is installed");
        let stderr = chromium.stderr.take().expect("stderr");
        let ws_url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stderr).lines();
            let url = lines.by_ref().map_while(Result::ok).find_map(|l| {
                l.split_once("DevTools listening on ")
                    .map(|(_, u)| u.trim().to_string())
            });
            // Keep draining so that chromium never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            url
        })
        .await
        .expect("join")
        .expect("chromium printed its DevTools address");
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("DevTools websocket");
        let mut cdp = Cdp {
            ws,
            next: 0,
            events: Vec::new(),
        };
        let target = cdp
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = cdp
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().expect("session").to_string();
        for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
            cdp.call(Some(&session), m, json!({})).await;
        }
        Browser {
            chromium,
            cdp,
            session,
            _profile: profile,
        }
    }

    async fn navigate(&mut self, url: &str) {
        let s = self.session.clone();
        self.cdp
            .call(Some(&s), "Page.navigate", json!({"url": url}))
            .await;
    }

    /// Evaluates `expr` (which returns a JSON string) in the page.
    async fn eval(&mut self, expr: &str) -> Value {
        let s = self.session.clone();
        let r = self
            .cdp
            .call(
                Some(&s),
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await;
        serde_json::from_str(r["result"]["value"].as_str().unwrap_or("null")).unwrap_or_default()
    }

    /// Saves a screenshot as `target/test-artifacts/NAME`; its bytes.
    async fn screenshot(&mut self, name: &str) -> Vec<u8> {
        self.capture(name, json!({"format": "png"})).await
    }

    /// The same of the whole page, scrolled or not.
    async fn screenshot_page(&mut self, name: &str) -> Vec<u8> {
        let s = self.session.clone();
        let m = self.cdp.call(Some(&s), "Page.getLayoutMetrics", json!({})).await;
        let size = &m["cssContentSize"];
        let clip = json!({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1});
        self.capture(
            name,
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        )
        .await
    }

    async fn capture(&mut self, name: &str, params: Value) -> Vec<u8> {
        let s = self.session.clone();
        let shot = self.cdp.call(Some(&s), "Page.captureScreenshot", params).await;
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or(""))
            .expect("png");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("test-artifacts");
        std::fs::create_dir_all(&dir).expect("artifact dir");
        std::fs::write(dir.join(name), &png).expect("screenshot");
        png
    }

    /// Console errors, exceptions and failed loads the page reported.
    fn errors(&self) -> Vec<&Value> {
        self.cdp
            .events
            .iter()
            .filter(|e| {
                e["method"] == "Runtime.exceptionThrown"
                    || (e["method"] == "Runtime.consoleAPICalled" && e["params"]["type"] == "error")
                    || (e["method"] == "Log.entryAdded" && e["params"]["entry"]["level"] == "error")
            })
            .collect()
    }

    fn close(mut self) {
        let _ = self.chromium.kill();
        let _ = self.chromium.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_qps_and_servers_in_chromium() {
    let backends = [
        Backend::named("web-01").await,
        Backend::named("web-02").await,
        Backend::named("web-03").await,
    ];
    let mut toml = "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"web\"\n\
                    [pool.health_check]\ntype = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\n"
        .to_string();
    for (i, b) in backends.iter().enumerate() {
        toml.push_str(&format!(
            "[[pool.server]]\nname = \"web-0{}\"\naddress = \"{}\"\n",
            i + 1,
            b.addr
        ));
    }
    toml.push_str("[[route]]\npool = \"web\"\n");
    // A writer endpoint whose only database server does not answer: the
    // TCP panel shows why it refuses connections.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    toml.push_str(&format!(
        "[[listener]]\nname = \"db-writer\"\naddress = \"127.0.0.1:0\"\nmode = \"tcp\"\npool = \"db\"\nrole = \"writer\"\n\
         [[pool]]\nname = \"db\"\n[pool.health_check]\ntype = \"mysql\"\nuser = \"monitor\"\n\
         interval = \"200ms\"\ntimeout = \"200ms\"\n[[pool.server]]\nname = \"db1\"\naddress = \"{gone_addr}\"\n"
    ));
    // A second instance, shown with this one as the fleet.
    let peer = start_app(
        &format!(
            "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"web\"\n\
             [[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"web\"\n",
            backends[0].addr
        ),
        std::path::Path::new("."),
    )
    .await;
    toml.push_str(&format!(
        "[cluster]\npeers = [{{ name = \"lb2\", address = \"{}\" }}]\n",
        peer.admin().expect("peer admin")
    ));
    // The hosts behind it: the dashboard draws them (`rampart plan`).
    toml.push_str(
        "[topology]\nadmin_cidr = [\"192.0.2.100/32\"]\nfloating_addresses = [\"192.0.2.10\"]\n\
         [[topology.host]]\nname = \"lb1\"\naddresses = [\"192.0.2.2\"]\nroles = [\"lb\"]\n\
         [[topology.host]]\nname = \"lb2\"\naddresses = [\"192.0.2.3\"]\nroles = [\"lb\"]\n\
         [[topology.host]]\nname = \"web-01\"\naddresses = [\"192.0.2.11\"]\nroles = [\"web\"]\nports = [8080]\n",
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    // The checked servers take traffic once their first check passed.
    wait_ready(ad).await;
    let load = Load::start(listener(&app, "web"), "/", 1_000_000, Duration::from_secs(40));

    // Traffic for a few seconds before the page opens: its charts must
    // start from the history rampart kept, not empty.
    let kept = wait_until(Duration::from_secs(20), || async {
        let (_, v) = admin(ad, "GET", "/api/stats?history=1", None).await;
        v["history"].as_array().is_some_and(|h| {
            h.iter()
                .filter(|p| p["totals"]["qps"]["1s"].as_f64() > Some(0.0))
                .count()
                >= 5
        })
    })
    .await;
    assert!(kept.is_some(), "no history with traffic in /api/stats?history=1");

    let mut browser = Browser::open(1400, 1000).await;
    browser.navigate(&format!("http://{ad}/")).await;

    let probe = "JSON.stringify({points: history.length, status: document.getElementById('status')?.textContent, \
                 qps: document.getElementById('summary-req/s')?.textContent, \
                 rows: [...document.querySelectorAll('#servers-table tr[data-server^=\"web-\"]')].map(r => r.innerText), \
                 tcp: document.getElementById('tcp-alerts')?.innerText, \
                 before_open: history.filter(h => h.t < performance.timeOrigin / 1000 && h.stats.totals.qps['1s'] > 0).length, \
                 fleet: [...document.querySelectorAll('#fleet-table tr[data-instance]')].map(r => r.innerText), \
                 fleet_before_open: (fleetHistory.get('lb2') || []).filter(p => p[0] < performance.timeOrigin / 1000).length, \
                 db: [...document.querySelectorAll('#db-table tr[data-server]')].map(r => r.innerText), \
                 plan: (() => { const i = document.getElementById('plan-diagram'); \
                                return i ? {loaded: i.complete, width: i.naturalWidth, height: i.naturalHeight} : null; })()})";
    let mut last = Value::Null;
    for _ in 0..150 {
        last = browser.eval(probe).await;
        let qps = last["qps"].as_str().unwrap_or("–").replace([',', '\u{a0}'], "");
        let live = last["status"] == "live";
        let rows = last["rows"].as_array().map_or(0, Vec::len);
        let all_up = last["rows"]
            .as_array()
            .is_some_and(|r| r.iter().all(|x| x.as_str().unwrap_or("").contains("up")));
        // A few seconds of history so that the charts have lines to show.
        let points = last["points"].as_u64().unwrap_or(0);
        let refusing = last["tcp"]
            .as_str()
            .unwrap_or("")
            .contains("no server is writable");
        let drawn = last["plan"]["width"].as_u64().is_some_and(|w| w > 0);
        if live
            && rows == 3
            && all_up
            && refusing
            && drawn
            && points >= 4
            && qps.parse::<f64>().is_ok_and(|q| q > 0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let png = browser.screenshot("dashboard.png").await;
    let report = load.stop().await;
    peer.shutdown().await;

    assert_eq!(last["status"], "live", "{last}");
    // Chromium decoded the SVG rampart drew (a malformed one has no size).
    assert!(
        last["plan"]["loaded"] == true && last["plan"]["width"].as_u64() > Some(300),
        "the infrastructure diagram did not render: {last}"
    );
    let qps: f64 = last["qps"]
        .as_str()
        .unwrap_or("0")
        .replace([',', '\u{a0}'], "")
        .parse()
        .unwrap_or(0.0);
    assert!(qps > 0.0, "the dashboard shows no traffic: {last}");
    let rows: Vec<&str> = last["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(rows.len(), 3, "{last}");
    for (row, name) in rows.iter().zip(["web-01", "web-02", "web-03"]) {
        assert!(row.contains(name) && row.contains("up"), "{row}");
    }
    assert!(
        last["before_open"].as_u64() >= Some(5),
        "the charts did not start from history: {last}"
    );
    let fleet: Vec<&str> = last["fleet"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        fleet.len() == 3 && fleet[1].contains("lb2") && fleet[1].contains("up"),
        "{last}"
    );
    assert!(
        fleet[2].contains("fleet total") && fleet[2].contains("2 / 2 up"),
        "{last}"
    );
    assert!(
        last["fleet_before_open"].as_u64() >= Some(3),
        "the fleet chart did not start from the peer's history: {last}"
    );
    let banner = last["tcp"].as_str().unwrap_or("");
    assert!(
        banner.contains("writer endpoint db-writer refuses connections: no server is writable"),
        "{last}"
    );
    let db = last["db"][0].as_str().unwrap_or("");
    assert!(
        db.contains("db1") && db.contains("down") && db.contains("connect to"),
        "{last}"
    );
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot was saved");
    assert_eq!(report.failed, 0);
    app.shutdown().await;
}

/// Issue 24's first slice, in Chromium at 800 px: each server's state at a
/// glance (a drained row greyed with its badge, a down server with its
/// reason), "servers up" counting only servers that would take a request,
/// no request for a diagram the config does not have (no console error),
/// no sideways scroll, and the page saying so when rampart shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_each_server_s_state_and_the_shutdown() {
    let backends = [Backend::named("web-01").await, Backend::named("web-02").await];
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"web\"\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\n\
         [[pool.server]]\nname = \"web-01\"\naddress = \"{}\"\n[[pool.server]]\nname = \"web-02\"\naddress = \"{}\"\n\
         [[pool.server]]\nname = \"web-03\"\naddress = \"{gone_addr}\"\n[[route]]\npool = \"web\"\n",
        backends[0].addr, backends[1].addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    wait_ready(ad).await;
    let (status, v) = admin(ad, "POST", "/api/pools/web/servers/web-02/drain", None).await;
    assert_eq!(status, 202, "{v}");

    let mut browser = Browser::open(800, 900).await;
    browser.navigate(&format!("http://{ad}/")).await;
    let probe = "JSON.stringify({status: document.getElementById('status')?.textContent, \
                 up: document.getElementById('summary-servers')?.textContent, \
                 rows: Object.fromEntries([...document.querySelectorAll('#servers-table tr[data-server]')] \
                   .map(r => [r.dataset.server, {state: r.dataset.state, cls: r.className, text: r.innerText, \
                                                 opacity: getComputedStyle(r.cells[0]).opacity}])), \
                 scroll: document.documentElement.scrollWidth - document.documentElement.clientWidth, \
                 plan_asked: performance.getEntriesByType('resource').some(e => e.name.includes('plan.svg'))})";
    let mut last = Value::Null;
    for _ in 0..100 {
        last = browser.eval(probe).await;
        if last["status"] == "live"
            && last["rows"]["web-03"]["state"] == "down"
            && last["rows"]["web-02"]["state"] == "drained"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let png = browser.screenshot("dashboard-states.png").await;
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(last["status"], "live", "{last}");
    let rows = &last["rows"];
    assert_eq!(rows["web-01"]["state"], "up", "{last}");
    // Drained: its own badge, the row greyed; not counted as up.
    assert_eq!(rows["web-02"]["state"], "drained", "{last}");
    assert!(
        rows["web-02"]["cls"]
            .as_str()
            .is_some_and(|c| c.contains("row-drained")),
        "{last}"
    );
    let faded: f64 = rows["web-02"]["opacity"]
        .as_str()
        .unwrap_or("1")
        .parse()
        .unwrap_or(1.0);
    assert!(faded < 0.8, "the drained row is not greyed: {last}");
    // Down, with why and for how long.
    let down = rows["web-03"]["text"].as_str().unwrap_or("");
    assert!(down.contains("down for") && down.contains("refused"), "{last}");
    assert_eq!(last["up"], "1 / 3", "{last}");
    assert_eq!(last["plan_asked"], false, "no [topology]: no diagram asked for");
    assert!(
        last["scroll"].as_i64().is_some_and(|s| s <= 0),
        "sideways scroll at 800 px: {last}"
    );

    // SIGTERM's path: the page stops saying "live" within a few seconds.
    let stopping = tokio::spawn(async move { app.shutdown().await });
    let mut status = Value::Null;
    for _ in 0..50 {
        status = browser
            .eval("JSON.stringify(document.getElementById('status')?.textContent)")
            .await;
        if status.as_str().is_some_and(|s| s.contains("shut")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        status.as_str().is_some_and(|s| s.contains("shut")),
        "status after shutdown: {status}"
    );
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close();
    stopping.await.expect("shutdown");
}

/// A certificate for `name` from a CA of its own, valid for `days` more
/// days: (certificate PEM, key PEM, CA PEM).
fn expiring_cert(name: &str, days: i64) -> (String, String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Expiry Test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let mut leaf = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(days);
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).expect("leaf");
    (cert.pem(), key.serialize_pem(), ca_cert.pem())
}

/// Issue 24 in Chromium at 800 px, as an operator uses the page: the
/// admin token asked for by the page (never in its URL); a drain through
/// the page's button refused without the token and done with it, and a
/// weight set there; the page's writes refused from another site; the
/// configuration view with the version and the last reload; the tail of
/// failing requests; status classes per server and route; an outlier's
/// p99 marked; certificates with SANs, issuer and expiry coloured by days
/// left; the HTTP/1.1 / HTTP/2 split; charts with round, distinct tick
/// labels, a hover read-out, the drain marked on the time axis, and a
/// range picker whose y-axis fits what it shows (after a burst, the 1
/// minute range no longer scales to it). No console error, no sideways
/// scroll; screenshots saved for a person to look at (and, with
/// `RAMPART_UPDATE_DOCS=1`, as `docs/images/dashboard.png`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_what_an_operator_drives() {
    const TOKEN: &str = "an-admin-token-for-the-page";
    let web1 = Backend::named("web-01").await;
    let web2 = Backend::named("web-02").await;
    // A slow peer: its p99 stands out from the others'.
    let slow = Backend::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        http::Response::new(full("web-03"))
    })
    .await;
    let oops = Backend::start(|_req| async {
        let mut r = http::Response::new(full("broken"));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, days) in [("amber.test", 20), ("red.test", 3)] {
        let (cert, key, ca) = expiring_cert(name, days);
        std::fs::write(dir.path().join(format!("{name}.ca")), ca).expect("write");
        std::fs::write(dir.path().join(format!("{name}.pem")), cert).expect("write");
        std::fs::write(dir.path().join(format!("{name}.key")), key).expect("write");
    }
    let config = dir.path().join("rampart.toml");
    std::fs::write(
        &config,
        format!(
            "[admin]\naddress = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
             [[listener]]\nname = \"secure\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\n\
             [[listener.certificate]]\ncert = \"amber.test.pem\"\nkey = \"amber.test.key\"\n\
             [[listener.certificate]]\ncert = \"red.test.pem\"\nkey = \"red.test.key\"\n\
             [[pool]]\nname = \"web\"\nalgorithm = \"round_robin\"\n\
             [pool.health_check]\ntype = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\n\
             [[pool.server]]\nname = \"web-01\"\naddress = \"{}\"\n[[pool.server]]\nname = \"web-02\"\naddress = \"{}\"\n\
             [[pool.server]]\nname = \"web-03\"\naddress = \"{}\"\n\
             [[pool]]\nname = \"broken\"\n[[pool.server]]\nname = \"oops\"\naddress = \"{}\"\n\
             [[route]]\npool = \"web\"\n[[route]]\npath = \"/fail\"\npool = \"broken\"\n\
             [[rule]]\nname = \"no-admin\"\naction = \"deny\"\n[rule.match]\npath_prefix = \"/admin\"\n",
            web1.addr, web2.addr, slow.addr, oops.addr
        ),
    )
    .expect("config");
    let app = start_app_file(&config).await;
    let ad = app.admin().expect("admin");
    wait_ready(ad).await;
    let web = listener(&app, "web");

    // A burst first: several connections at full speed for 3 s...
    let burst: Vec<Load> = (0..6)
        .map(|_| Load::start(web, "/", 1_000_000, Duration::from_secs(3)))
        .collect();
    for l in burst {
        let r = l.finish().await;
        assert_eq!(r.failed, 0, "{:?}", r.errors);
    }
    let burst_ended = std::time::Instant::now();
    // ... then a trickle of about 10 requests a second for the rest.
    let trickle = tokio::spawn(async move {
        let mut c = h1(web).await;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        for _ in 0..1200 {
            tick.tick().await;
            if c.ready().await.is_err() {
                c = h1(web).await;
            }
            let _ = c.go(get("/", "load.test")).await;
        }
    });
    // Failing requests, a refusal and an HTTP/2 connection over TLS.
    let mut c = h1(web).await;
    for i in 0..3 {
        let resp = c
            .go(get(&format!("/fail/{i}"), "shop.test"))
            .await
            .expect("answer");
        assert_eq!(resp.status(), 500);
        let _ = read(resp).await;
    }
    let resp = c.go(get("/admin", "shop.test")).await.expect("answer");
    assert_eq!(resp.status(), 403);
    let _ = read(resp).await;
    let tls = tls_connect(
        listener(&app, "secure"),
        "amber.test",
        &dir.path().join("amber.test.ca"),
        &[b"h2"],
    )
    .await;
    let mut h2 = h2_over(tls).await;
    let resp = h2.send_request(get("/", "amber.test")).await.expect("h2 answer");
    assert_eq!(resp.status(), 200);

    // The page without a token asks for it, and takes it in a form.
    let mut browser = Browser::open(800, 1000).await;
    browser.navigate(&format!("http://{ad}/")).await;
    let form_shown =
        "JSON.stringify(getComputedStyle(document.getElementById('token-form')).display !== 'none')";
    let asked = wait_for(&mut browser, form_shown, |v| *v == true).await;
    assert_eq!(asked, true, "the page did not ask for the token");
    browser
        .eval(&format!(
            "document.getElementById('token-input').value = '{TOKEN}'; \
             document.getElementById('token-form').requestSubmit(); JSON.stringify(location.href)"
        ))
        .await;
    let live = wait_for(
        &mut browser,
        "JSON.stringify({status: document.getElementById('status').textContent, \
         rows: document.querySelectorAll('#servers-table tr[data-server]').length, \
         failures: document.querySelectorAll('#failures-table tr[data-request-id]').length})",
        |v| v["status"] == "live" && v["rows"] == 4 && v["failures"] == 3,
    )
    .await;
    assert_eq!(live["status"], "live", "{live}");
    assert_eq!(
        browser.eval(form_shown).await,
        false,
        "the token form stays after the token was given"
    );
    let href = browser.eval("JSON.stringify(location.href)").await;
    assert!(
        !href.as_str().unwrap_or("").contains("token"),
        "the token went into the URL: {href}"
    );

    // A drain without the right token: refused, said on the page.
    let click = |server: &str, button: &str| {
        format!(
            "(() => {{ const b = document.querySelector('#servers-table tr[data-server=\"{server}\"] button.{button}'); \
             if (b) b.click(); return JSON.stringify(!!b); }})()"
        )
    };
    browser
        .eval("sessionStorage.setItem('rampart-admin-token', 'not-the-admin-token'); JSON.stringify(1)")
        .await;
    assert_eq!(browser.eval(&click("web-02", "drain")).await, true);
    let refused = wait_for(
        &mut browser,
        "JSON.stringify(document.getElementById('control-note').textContent)",
        |v| v.as_str().is_some_and(|s| s.contains("refused")),
    )
    .await;
    assert!(
        refused.as_str().is_some_and(|s| s.contains("401")),
        "no refusal shown: {refused}"
    );
    let (_, pools) = admin_with(ad, "GET", "/api/pools", None, Some(TOKEN)).await;
    assert_eq!(
        pools["pools"][0]["servers"][1]["state"], "active",
        "drained without the token"
    );
    // With the token (the page asks again): drained, and a weight set.
    browser
        .eval(&format!(
            "document.getElementById('token-input').value = '{TOKEN}'; \
             document.getElementById('token-form').requestSubmit(); JSON.stringify(1)"
        ))
        .await;
    assert_eq!(browser.eval(&click("web-02", "drain")).await, true);
    // Typed as an operator types: focus, input events, then "set" (the
    // table's redraw each second must not lose it).
    let seen = browser
        .eval(
            "(() => { const i = document.querySelector('#servers-table tr[data-server=\"web-01\"] input.weight'); \
             i.focus(); i.value = '5'; i.dispatchEvent(new Event('input', {bubbles: true})); return JSON.stringify(history.length); })()",
        )
        .await
        .as_u64()
        .unwrap_or(0);
    // Two more seconds of stats arrive while the field holds 5.
    wait_for(&mut browser, "JSON.stringify(history.length)", |v| {
        v.as_u64().is_some_and(|n| n >= seen + 2)
    })
    .await;
    assert_eq!(browser.eval(&click("web-01", "set-weight")).await, true);
    let drained = wait_for(
        &mut browser,
        "JSON.stringify({state: document.querySelector('#servers-table tr[data-server=\"web-02\"]')?.dataset.state, \
         weight: document.querySelector('#servers-table tr[data-server=\"web-01\"] td:nth-child(4)')?.textContent, \
         marks: changes.filter(c => c.kind === 'drain').length})",
        |v| (v["state"] == "drained" || v["state"] == "draining") && v["weight"] == "5" && v["marks"] == 1,
    )
    .await;
    assert!(
        drained["state"] == "drained" || drained["state"] == "draining",
        "{drained}"
    );
    assert_eq!(drained["weight"], "5", "{drained}");
    let (_, pools) = admin_with(ad, "GET", "/api/pools", None, Some(TOKEN)).await;
    assert_ne!(pools["pools"][0]["servers"][1]["state"], "active", "{pools}");
    assert_eq!(pools["pools"][0]["servers"][0]["weight"], 5, "{pools}");

    // The same change from another site is refused, token or not.
    let forged = raw(
        ad,
        format!(
            "POST /api/pools/web/servers/web-01/drain HTTP/1.1\r\nHost: {ad}\r\nOrigin: http://attacker.example\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    let (_, pools) = admin_with(ad, "GET", "/api/pools", None, Some(TOKEN)).await;
    assert_eq!(pools["pools"][0]["servers"][0]["state"], "active", "{pools}");

    // A reload shows in the configuration view.
    let (status, v) = admin_with(ad, "POST", "/api/reload", None, Some(TOKEN)).await;
    assert_eq!(status, 200, "{v}");
    let probe = "JSON.stringify({about: document.getElementById('about').textContent, \
                 config: document.getElementById('config-view').innerText, \
                 failures: [...document.querySelectorAll('#failures-table tr[data-request-id]')].map(r => r.innerText), \
                 routes: Object.fromEntries([...document.querySelectorAll('#routes-table tr[data-route]')].map(r => [r.dataset.route, r.innerText])), \
                 servers: Object.fromEntries([...document.querySelectorAll('#servers-table tr[data-server]')].map(r => [r.dataset.server, r.innerText])), \
                 pool: document.querySelector('#servers-table tr[data-pool=\"web\"]')?.innerText, \
                 outlier: document.querySelector('#servers-table tr[data-server=\"web-03\"] td.outlier') !== null, \
                 certs: Object.fromEntries([...document.querySelectorAll('#certificates-table tr[data-certificate]')].map(r => [r.dataset.certificate, {text: r.innerText, cls: r.querySelector('.expiry').className}])), \
                 protocols: document.querySelector('#listeners-table tr[data-listener=\"secure\"] td.protocols')?.textContent, \
                 firewall: document.getElementById('firewall-table').innerText, \
                 scroll: document.documentElement.scrollWidth - document.documentElement.clientWidth})";
    let seen = wait_for(&mut browser, probe, |v| {
        v["about"].as_str().is_some_and(|s| s.contains("last reload"))
            && v["outlier"] == true
            && v["protocols"].as_str().is_some_and(|p| p.ends_with("/ 1"))
    })
    .await;
    let about = seen["about"].as_str().unwrap_or("");
    assert!(
        about.contains(env!("CARGO_PKG_VERSION"))
            && about.contains("up ")
            && about.contains("reload")
            && about.contains("ok"),
        "{seen}"
    );
    let config_text = seen["config"].as_str().unwrap_or("");
    for want in [
        "last reload",
        "applied",
        "secure",
        "https",
        "TLS 1.3, TLS 1.2",
        "/fail",
        "broken",
        "no-admin",
        "path starts with /admin",
        "deny with 403",
        "round_robin",
        "TCP connect every 200ms, timeout 200ms, up after 1 pass, down after 1 failure",
    ] {
        assert!(
            config_text.contains(want),
            "config view lacks `{want}`: {config_text}"
        );
    }
    let failures: Vec<&str> = seen["failures"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(failures.len(), 3, "{seen}");
    assert!(
        failures[0].contains("GET shop.test/fail/2")
            && failures[0].contains("oops")
            && failures[0].contains("500"),
        "newest first, with host, path, server and status: {seen}"
    );
    let fail_route = seen["routes"]
        .as_object()
        .and_then(|r| r.iter().find(|(k, _)| k.contains("/fail")))
        .map(|(_, v)| v.as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(fail_route.contains('3'), "the /fail route's 5xx: {seen}");
    let has = |v: &Value, needle: &str| v.as_str().is_some_and(|t| t.contains(needle));
    assert!(
        has(&seen["servers"]["oops"], "100.00 %"),
        "error share per server: {seen}"
    );
    assert!(has(&seen["pool"], "check: TCP connect every 200ms"), "{seen}");
    assert_eq!(seen["outlier"], true, "web-03's p99 not marked: {seen}");
    let amber = &seen["certs"]["amber.test"];
    let red = &seen["certs"]["red.test"];
    assert!(
        amber["text"]
            .as_str()
            .is_some_and(|t| t.contains("Expiry Test CA") && t.contains("amber.test")),
        "{seen}"
    );
    assert!(has(&amber["cls"], "unknown"), "amber under 30 days: {seen}");
    assert!(has(&red["cls"], "down"), "red under 7 days: {seen}");
    assert!(
        has(&seen["firewall"], "refused: denied"),
        "refusals by reason: {seen}"
    );
    assert!(
        seen["scroll"].as_i64().is_some_and(|s| s <= 0),
        "sideways scroll: {seen}"
    );

    // Charts: round tick labels, none twice; a hover read-out with the
    // clock time; the drain marked.
    let chart = browser
        .eval(
            "(() => { const c = document.getElementById('qps-canvas'); const r = c.getBoundingClientRect(); \
             c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.right - 20, clientY: r.top + 50, bubbles: true})); \
             const d = PANELS.find(p => p.id === 'qps').drawn(); \
             return JSON.stringify({y: d.yLabels, x: d.xLabels, marks: d.marks.map(m => m.kind), \
                                    tip: document.getElementById('qps-tip').textContent, \
                                    tipShown: !document.getElementById('qps-tip').hidden}); })()",
        )
        .await;
    let labels = |k: &str| -> Vec<String> {
        chart[k]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    for axis in ["y", "x"] {
        let l = labels(axis);
        let mut dedup = l.clone();
        dedup.dedup();
        assert!(
            l.len() >= 3 && dedup.len() == l.len(),
            "{axis} labels repeat: {chart}"
        );
    }
    assert!(
        labels("y").iter().all(|l| l
            .trim_end_matches('k')
            .parse::<f64>()
            .is_ok_and(|v| (v * 10.0).fract() == 0.0)),
        "round tick values: {chart}"
    );
    assert!(
        chart["marks"]
            .as_array()
            .is_some_and(|m| m.iter().any(|k| k == "drain")),
        "{chart}"
    );
    let tip = chart["tip"].as_str().unwrap_or("");
    assert!(
        chart["tipShown"] == true && tip.contains("all: ") && tip.split(':').count() >= 3,
        "the hover read-out: {chart}"
    );
    browser.screenshot("dashboard-operator.png").await;

    // The range picker: a minute after the burst, the 1 minute range
    // scales to the trickle while 15 minutes still shows the burst.
    let left = Duration::from_secs(64).saturating_sub(burst_ended.elapsed());
    tokio::time::sleep(left).await;
    let scales = browser
        .eval(
            "(() => { const top = (s) => { document.querySelector('#range button[data-seconds=\"' + s + '\"]').click(); \
             return PANELS.find(p => p.id === 'qps').drawn().top; }; \
             return JSON.stringify({fifteen: top(900), one: top(60)}); })()",
        )
        .await;
    let (fifteen, one) = (
        scales["fifteen"].as_f64().unwrap_or(0.0),
        scales["one"].as_f64().unwrap_or(f64::MAX),
    );
    assert!(
        fifteen > 0.0 && one * 4.0 < fifteen,
        "the y-axis did not rescale: {scales}"
    );
    let png = browser.screenshot_page("dashboard-one-minute.png").await;
    if std::env::var_os("RAMPART_UPDATE_DOCS").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/images/dashboard.png");
        std::fs::write(docs, &png).expect("docs screenshot");
    }
    // The two 401s this test asked for (the page opened without its token,
    // the drain with a wrong one) are logged by Chromium as failed loads;
    // nothing else may be.
    let errors: Vec<&Value> = browser
        .errors()
        .into_iter()
        .filter(|e| {
            let entry = &e["params"]["entry"];
            let url = entry["url"].as_str().unwrap_or("");
            let expected = entry["source"] == "network"
                && entry["text"].as_str().is_some_and(|t| t.contains("401"))
                && (url.ends_with("/api/stats?history=1") || url.ends_with("/web-02/drain"));
            !expected
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.close();
    trickle.abort();
    app.shutdown().await;
}

/// Evaluates `probe` until `done` holds (at most 15 s); the last value.
async fn wait_for(browser: &mut Browser, probe: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = browser.eval(probe).await;
        if done(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}
