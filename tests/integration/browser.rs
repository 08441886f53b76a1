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
        let s = self.session.clone();
        let shot = self
            .cdp
            .call(Some(&s), "Page.captureScreenshot", json!({"format": "png"}))
            .await;
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
