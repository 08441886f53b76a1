//! Monitoring: exact counts, rates, Prometheus, the dashboard.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Paced GETs at `rate` per second for `secs` seconds; every tenth asks for
/// `/missing`. Returns (ok, not_found, started) counters and the task.
struct Paced {
    ok: Arc<AtomicUsize>,
    missing: Arc<AtomicUsize>,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

fn paced(addr: std::net::SocketAddr, rate: u64, secs: u64) -> Paced {
    let (ok, missing) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, m) = (ok.clone(), missing.clone());
    let started = Instant::now();
    let task = tokio::spawn(async move {
        let mut c = h1(addr).await;
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let total = rate * secs;
        for i in 0..total {
            tick.tick().await;
            let path = if i % 10 == 9 { "/missing" } else { "/" };
            let (status, _, _) = read(c.go(get(path, "x")).await.expect("response")).await;
            match status {
                200 => o.fetch_add(1, Ordering::SeqCst),
                404 => m.fetch_add(1, Ordering::SeqCst),
                other => panic!("unexpected status {other}"),
            };
        }
    });
    Paced {
        ok,
        missing,
        started,
        task,
    }
}

async fn counting_backend(name: &'static str) -> Backend {
    Backend::start(move |req| async move {
        let mut resp = http::Response::new(full(name));
        if req.uri().path() == "/missing" {
            *resp.status_mut() = http::StatusCode::NOT_FOUND;
        }
        resp
    })
    .await
}

async fn get_text(addr: std::net::SocketAddr, path: &str) -> String {
    let mut c = h1(addr).await;
    read(c.go(get(path, "x")).await.expect("response")).await.2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_metrics_count_exactly_and_qps_matches_the_client() {
    let (a, b) = (counting_backend("a").await, counting_backend("b").await);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[pool.server]]\nname = \"b\"\naddress = \"{}\"\n\
         [[route]]\npool = \"p\"\n",
        a.addr, b.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    // Real time on purpose: the sampler's rates are compared with what a
    // paced client measured on the wall clock over the same 10 s.
    let load = paced(listener(&app, "web"), 400, 13);
    // After 11.5 s of steady load, the 10 s rate covers load only.
    tokio::time::sleep_until((load.started + Duration::from_millis(11_500)).into()).await;
    let done = load.ok.load(Ordering::SeqCst) + load.missing.load(Ordering::SeqCst);
    let client_rate = done as f64 / load.started.elapsed().as_secs_f64();
    let stats: serde_json::Value = serde_json::from_str(&get_text(ad, "/api/stats").await).expect("json");
    let qps = stats["totals"]["qps"]["10s"].as_f64().expect("10 s rate");
    assert!(
        (qps - client_rate).abs() / client_rate < 0.03,
        "rampart's 10 s rate {qps} vs the client's {client_rate:.1} req/s"
    );
    load.task.await.expect("load");
    let ok = load.ok.load(Ordering::SeqCst) as u64;
    let missing = load.missing.load(Ordering::SeqCst) as u64;
    assert_eq!(ok + missing, 400 * 13);

    let stats: serde_json::Value = serde_json::from_str(&get_text(ad, "/api/stats").await).expect("json");
    assert_eq!(stats["totals"]["requests"], ok + missing);
    assert_eq!(stats["totals"]["by_class"]["2xx"], ok);
    assert_eq!(stats["totals"]["by_class"]["4xx"], missing);
    assert_eq!(stats["totals"]["by_method"]["GET"], ok + missing);
    let servers = stats["pools"][0]["servers"].as_array().expect("servers");
    let mut sum2 = 0;
    let mut sum4 = 0;
    for (s, be) in servers.iter().zip([&a, &b]) {
        assert_eq!(s["requests"], be.hits() as u64, "{s}");
        sum2 += s["by_class"]["2xx"].as_u64().unwrap_or(0);
        sum4 += s["by_class"]["4xx"].as_u64().unwrap_or(0);
    }
    assert_eq!((sum2, sum4), (ok, missing));
    assert!(stats["pools"][0]["servers"][0]["latency_ms"]["p50"]
        .as_f64()
        .is_some());
    let route = &stats["routes"][0];
    assert_eq!(route["name"], "*/ -> p");
    assert_eq!(route["requests"], ok + missing);

    let text = get_text(ad, "/metrics").await;
    let m = |s: &str| metric(&text, s).unwrap_or(-1.0) as u64;
    let version = format!("rampart_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
    assert_eq!(m(&version), 1, "{text}");
    let started = metric(&text, "rampart_start_time_seconds").unwrap_or(0.0);
    assert!(started > 1.7e9, "start time {started}");
    assert_eq!(
        m("rampart_requests_total{listener=\"web\",method=\"GET\",code_class=\"2xx\"}"),
        ok
    );
    assert_eq!(
        m("rampart_requests_total{listener=\"web\",method=\"GET\",code_class=\"4xx\"}"),
        missing
    );
    for (name, be) in [("a", &a), ("b", &b)] {
        let two = m(&format!(
            "rampart_backend_requests_total{{pool=\"p\",server=\"{name}\",code_class=\"2xx\"}}"
        ));
        let four = m(&format!(
            "rampart_backend_requests_total{{pool=\"p\",server=\"{name}\",code_class=\"4xx\"}}"
        ));
        assert_eq!(two + four, be.hits() as u64, "{name}");
    }
    assert_eq!(
        m("rampart_request_duration_seconds_count{listener=\"web\"}"),
        ok + missing
    );
    assert_eq!(m("rampart_connections_active{listener=\"web\"}"), 0);
    assert!(m("rampart_received_bytes_total{listener=\"web\"}") > 0);
    app.shutdown().await;
}

/// A free port on 127.0.0.1 for programs that must be told one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_rampart() {
    let a = counting_backend("a").await;
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");

    // promtool accepts the exposition.
    let text = get_text(ad, "/metrics").await;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    {
        use std::io::Write;
        check
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
    }
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rampart\n    static_configs:\n      - targets: ['{ad}']\n"),
    )
    .expect("config");
    let port = free_port();
    let mut prom = std::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).expect("log"))
        .spawn()
        .expect("prometheus (Debian package prometheus) is installed");
    let load = paced(listener(&app, "web"), 200, 25);
    let prom_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let query = "/api/v1/query?query=sum(rate(rampart_requests_total%5B5s%5D))";
    let seen = Arc::new(std::sync::Mutex::new(None::<f64>));
    let ask = |q: &'static str| async move {
        let s = tokio::net::TcpStream::connect(prom_addr).await.ok()?;
        let mut c = h1_over(s).await;
        let (_, _, body) = read(c.go(get(q, "prometheus")).await.ok()?).await;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|x| x.parse::<f64>().ok())
    };
    // Wait until Prometheus has scraped through a whole 5 s window of load.
    let got = wait_until(Duration::from_secs(30), || async {
        let samples = ask("/api/v1/query?query=count_over_time(up%5B6s%5D)")
            .await
            .unwrap_or(0.0);
        if samples < 6.0 {
            return false;
        }
        let rate = ask(query).await;
        *seen.lock().expect("lock") = rate;
        rate.is_some()
    })
    .await;
    let _ = prom.kill();
    let _ = prom.wait();
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let seen = *seen.lock().expect("lock");
    assert!(
        got.is_some(),
        "Prometheus returned no rate (last {seen:?}); log:\n{log}"
    );
    let rate = seen.unwrap_or(0.0);
    assert!(
        (rate - 200.0).abs() < 200.0 * 0.2,
        "Prometheus says {rate} req/s for a 200 req/s load"
    );
    load.task.abort();
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_has_one_well_formed_line_per_request() {
    let a = counting_backend("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "[access_log]\nenabled = true\nformat = \"json\"\npath = \"access.log\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    for i in 0..50 {
        let path = if i % 5 == 4 { "/missing" } else { "/ok" };
        let req = http::Request::get(format!("{path}?i={i}"))
            .header("host", "shop.test")
            .header("user-agent", "rampart-test")
            .body(full(""))
            .expect("req");
        read(c.go(req).await.expect("response")).await;
    }
    let path = dir.path().join("access.log");
    let lines = wait_until(Duration::from_secs(5), || async {
        std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
            >= 50
    })
    .await;
    assert!(lines.is_some(), "the access log has fewer than 50 lines");
    let text = std::fs::read_to_string(&path).expect("log");
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(entries.len(), 50);
    for (i, e) in entries.iter().enumerate() {
        let want = if i % 5 == 4 { 404 } else { 200 };
        assert_eq!(e["status"], want, "{e}");
        assert_eq!(
            e["uri"],
            format!("{}?i={i}", if want == 404 { "/missing" } else { "/ok" })
        );
        assert_eq!(e["method"], "GET");
        assert_eq!(e["host"], "shop.test");
        assert_eq!(e["user_agent"], "rampart-test");
        assert_eq!(e["client"], "127.0.0.1");
        assert_eq!(e["server"], "a");
        assert_eq!(e["listener"], "web");
        assert_eq!(e["bytes"], 1);
        assert!(
            e["duration_ms"].as_f64().is_some() && e["request_id"].as_str().is_some_and(|r| r.len() == 16)
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_access_log_buffer_drops_lines_but_never_slows_requests() {
    let a = counting_backend("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A FIFO nobody reads: the writer cannot even open it, so the queue fills.
    let fifo = dir.path().join("blocked.log");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let toml = format!(
        "[access_log]\nenabled = true\npath = \"blocked.log\"\nbuffer = 2\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, dir.path()).await;
    let mut c = h1(listener(&app, "web")).await;
    let started = Instant::now();
    for _ in 0..100 {
        let (status, _, _) = read(c.go(get("/", "x")).await.expect("response")).await;
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let ad = app.admin().expect("admin");
    let stats: serde_json::Value = serde_json::from_str(&get_text(ad, "/api/stats").await).expect("json");
    let dropped = stats["access_log"]["dropped"].as_u64().expect("dropped counter");
    assert!(
        dropped >= 97,
        "dropped {dropped} of 100 with a queue of 2: {}",
        stats["access_log"]
    );
    let text = get_text(ad, "/metrics").await;
    assert_eq!(
        metric(&text, "rampart_access_log_dropped_lines_total").map(|v| v as u64),
        Some(dropped)
    );
    // Let the writer go (open the FIFO for reading) so that nothing stays blocked.
    use std::os::unix::fs::OpenOptionsExt;
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(0o4000)
        .open(&fifo)
        .expect("open fifo");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_alert_fires_once_and_resolves_once() {
    let (hook, notes) = webhook_sink().await;
    let mut a = Killable::start("a").await;
    let b = Killable::start("b").await;
    let toml = format!(
        "[alerts]\nwebhook = \"http://{}/hook\"\ninterval = \"100ms\"\n\
         [[alert]]\nname = \"a is down\"\nkind = \"server_down\"\npool = \"p\"\nserver = \"a\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
         [[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[pool.server]]\nname = \"b\"\naddress = \"{}\"\n\
         [[route]]\npool = \"p\"\n",
        hook.addr, a.addr, b.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    wait_until(Duration::from_secs(5), || async {
        server_info(ad, "p", "a").await.map(|v| v["health"] == "up") == Some(true)
    })
    .await
    .expect("a up");
    a.kill().await;
    let fired = wait_until(Duration::from_secs(5), || async {
        notes.lock().expect("lock").len() == 1
    })
    .await;
    assert!(fired.is_some(), "no firing notification");
    a.revive().await;
    let resolved = wait_until(Duration::from_secs(5), || async {
        notes.lock().expect("lock").len() == 2
    })
    .await;
    assert!(resolved.is_some(), "no resolved notification");
    // Many evaluations later (interval 100 ms), still exactly one of each.
    // Real time on purpose: this checks the running evaluator's wiring; the
    // one-notification-per-episode logic is unit-tested on paused time
    // (`alerts::tests`), and an absence can only be waited for.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let notes = notes.lock().expect("lock").clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["status"], "firing");
    assert_eq!(notes[0]["alert"], "a is down");
    assert_eq!(notes[0]["instance"], "a");
    assert_eq!(notes[1]["status"], "resolved");
    drop(b);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_top_shows_servers_and_rates() {
    let (a, b) = (counting_backend("a").await, counting_backend("b").await);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\nname = \"alpha\"\naddress = \"{}\"\n[[pool.server]]\nname = \"beta\"\naddress = \"{}\"\n\
         [[route]]\npool = \"p\"\n",
        a.addr, b.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin").to_string();
    let load = Load::start(listener(&app, "web"), "/", 2_000, Duration::from_secs(10));
    wait_until(Duration::from_secs(5), || async { load.done() >= 2_000 }).await;
    load.stop().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tokio::task::spawn_blocking(move || rampart(&["top", "--admin", &ad, "--once"], dir.path()))
        .await
        .expect("join");
    assert_eq!(out.0, 0, "{}", out.2);
    let screen = out.1;
    assert!(screen.contains("rampart top"), "{screen}");
    let alpha = screen
        .lines()
        .find(|l| l.contains("alpha"))
        .expect("alpha listed");
    assert!(
        alpha.contains("unknown") && alpha.contains("active") && alpha.contains("1000"),
        "{alpha}"
    );
    assert!(screen.lines().any(|l| l.starts_with("web ")), "{screen}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_the_access_log_after_rotation() {
    let a = counting_backend("a").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("rampart.toml");
    std::fs::write(
        &cfg,
        format!(
            "[admin]\naddress = \"127.0.0.1:0\"\n[access_log]\nenabled = true\nformat = \"combined\"\npath = \"access.log\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
             [[pool.server]]\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
            a.addr
        ),
    )
    .expect("config");
    let rp = Process::run(&cfg, dir.path());
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let lines = |p: std::path::PathBuf| async move {
        std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0)
    };
    let mut c = h1(rp.addr("web")).await;
    read(c.go(get("/first", "x")).await.expect("response")).await;
    assert!(
        wait_until(Duration::from_secs(5), || async { lines(log.clone()).await == 1 })
            .await
            .is_some()
    );
    std::fs::rename(&log, &rotated).expect("rotate");
    rp.signal("USR1");
    // The reopen is asynchronous: keep sending until a line lands in the new file.
    let mut reopened = false;
    for _ in 0..100 {
        read(c.go(get("/second", "x")).await.expect("response")).await;
        if lines(log.clone()).await >= 1 {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "no new access.log after SIGUSR1");
    let first = std::fs::read_to_string(&rotated).expect("rotated");
    assert!(
        first
            .lines()
            .next()
            .is_some_and(|l| l.contains("\"GET /first HTTP/1.1\" 200 1")),
        "{first}"
    );
    let second = std::fs::read_to_string(&log).expect("new log");
    assert!(second.lines().all(|l| l.contains("GET /second")), "{second}");
}

/// Sums `rampart_NAME_total` lines of `text` whose labels contain `part`.
fn sum_metric(text: &str, name: &str, part: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(part))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_counters_add_up_to_the_listener_counters() {
    let a = counting_backend("a").await;
    // One route serves both listeners; only one of them gets traffic,
    // then the other a different amount.
    let toml = format!(
        "[[listener]]\nname = \"one\"\naddress = \"127.0.0.1:0\"\n[[listener]]\nname = \"two\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"p\"\n[[pool.server]]\nname = \"a\"\naddress = \"{}\"\n[[route]]\npool = \"p\"\n",
        a.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    for (name, n) in [("one", 7), ("two", 0)] {
        for _ in 0..n {
            get_text(listener(&app, name), "/").await;
        }
    }
    let text = get_text(ad, "/metrics").await;
    let route = |l: &str| {
        sum_metric(
            &text,
            "rampart_route_requests_total",
            &format!("listener=\"{l}\""),
        )
    };
    let listener_total = |l: &str| sum_metric(&text, "rampart_requests_total", &format!("listener=\"{l}\""));
    assert_eq!((route("one"), listener_total("one")), (7, 7), "{text}");
    assert_eq!((route("two"), listener_total("two")), (0, 0), "{text}");
    for _ in 0..3 {
        get_text(listener(&app, "two"), "/missing").await;
    }
    let text = get_text(ad, "/metrics").await;
    let all_routes = sum_metric(&text, "rampart_route_requests_total", "");
    let all_listeners = sum_metric(&text, "rampart_requests_total", "");
    assert_eq!((all_routes, all_listeners), (10, 10), "{text}");
    // The API's route is the sum over the listeners it serves.
    let stats: serde_json::Value = serde_json::from_str(&get_text(ad, "/api/stats").await).expect("json");
    assert_eq!(stats["routes"][0]["requests"], 10, "{}", stats["routes"]);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_server_says_why_since_when_and_what_its_checks_saw() {
    let good = counting_backend("good").await;
    // A port nothing listens on: connections are refused.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [pool.health_check]\ntype = \"http\"\npath = \"/\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 2\n\
         [[pool.server]]\nname = \"good\"\naddress = \"{}\"\n[[pool.server]]\nname = \"gone\"\naddress = \"{refused}\"\n\
         [[route]]\npool = \"p\"\n",
        good.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    let down = wait_until(Duration::from_secs(10), || async {
        server_info(ad, "p", "gone")
            .await
            .is_some_and(|s| s["health"] == "down")
    })
    .await;
    assert!(down.is_some(), "the refused server went down");
    let gone = server_info(ad, "p", "gone").await.expect("gone");
    let reason = gone["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("refused"), "reason: {gone}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let since = gone["since"].as_f64().expect("since");
    assert!(since <= now && now - since < 10.0, "since {since}, now {now}");
    assert_eq!(gone["last_check"]["passed"], false, "{gone}");
    assert!(
        gone["last_check"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "{gone}"
    );
    let t = gone["transitions"].as_array().expect("transitions");
    assert_eq!(t.last().map(|t| t["to"].clone()), Some("down".into()), "{gone}");
    assert!(t
        .last()
        .and_then(|t| t["reason"].as_str())
        .unwrap_or_default()
        .contains("refused"));

    let up = wait_until(Duration::from_secs(10), || async {
        server_info(ad, "p", "good")
            .await
            .is_some_and(|s| s["health"] == "up")
    })
    .await;
    assert!(up.is_some(), "the answering server went up");
    let good_info = server_info(ad, "p", "good").await.expect("good");
    assert_eq!(good_info["reason"], serde_json::Value::Null, "{good_info}");
    assert_eq!(good_info["last_check"]["detail"], "HTTP 200", "{good_info}");
    assert!(good_info["last_check"]["took_ms"]
        .as_f64()
        .is_some_and(|ms| (0.0..500.0).contains(&ms)));
    assert_eq!(good_info["transitions"][0]["to"], "up", "{good_info}");
    app.shutdown().await;
}

/// The screen's lines, colour codes taken out.
fn screen_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut plain = String::new();
    let mut escape = false;
    for c in text.chars() {
        match (escape, c) {
            (false, '\x1b') => escape = true,
            (true, c) => escape = !(c.is_ascii_alphabetic()),
            (false, '\r') => {}
            (false, c) => plain.push(c),
        }
    }
    plain.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rampart_top_fits_80_columns_colours_states_keeps_its_screen_and_quits_on_q() {
    use base64::Engine;
    use std::io::{BufRead, Write};
    let a = counting_backend("alpha").await;
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let toml = format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"backends-with-a-long-name\"\n\
         [pool.health_check]\ntype = \"tcp\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 1\n\
         [[pool.server]]\nname = \"alpha\"\naddress = \"{}\"\n[[pool.server]]\nname = \"a-server-with-a-long-name\"\naddress = \"{gone_addr}\"\n\
         [[route]]\npool = \"backends-with-a-long-name\"\n",
        a.addr
    );
    let app = start_app(&toml, std::path::Path::new(".")).await;
    let ad = app.admin().expect("admin");
    wait_ready(ad).await;
    for _ in 0..5 {
        get_text(listener(&app, "web"), "/missing").await;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/top_pty.py");
    let mut py = std::process::Command::new("python3")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .arg(ad.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = py.stdin.take().expect("stdin");
    let mut lines = std::io::BufReader::new(py.stdout.take().expect("stdout")).lines();
    let mut next = move |tag: &str| -> Vec<u8> {
        let line = lines.next().expect("a line").expect("read");
        let data = line.strip_prefix(tag).unwrap_or_else(|| panic!("{tag}: {line}"));
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .unwrap_or_else(|_| data.as_bytes().to_vec())
    };
    let before = tokio::task::block_in_place(|| next("BEFORE "));
    let screen = screen_lines(&before);
    assert!(screen.iter().any(|l| l.contains("SERVER")), "{screen:#?}");
    for l in &screen {
        assert!(l.chars().count() <= 80, "{} columns: {l:?}", l.chars().count());
    }
    let alpha = screen
        .iter()
        .rev()
        .find(|l| l.contains("alpha"))
        .expect("alpha listed");
    assert!(
        alpha.contains("up") && alpha.contains('5'),
        "the 4XX column: {alpha}"
    );
    assert!(screen.iter().any(|l| l.contains("4XX")), "{screen:#?}");
    // Colours: up green, down red.
    let raw = String::from_utf8_lossy(&before);
    assert!(
        raw.contains("\x1b[32mup") && raw.contains("\x1b[31mdown"),
        "{raw:?}"
    );
    // The admin API goes away: the last screen stays, with a line that says so.
    app.shutdown().await;
    tokio::task::block_in_place(|| writeln!(stdin, "go").expect("go"));
    let after = tokio::task::block_in_place(|| next("AFTER "));
    let screen = screen_lines(&after);
    assert!(
        screen.iter().any(|l| l.contains("disconnected for")),
        "{screen:#?}"
    );
    assert!(
        screen.iter().any(|l| l.contains("alpha")),
        "the last screen is kept: {screen:#?}"
    );
    let exit = tokio::task::block_in_place(|| next("EXIT "));
    assert_eq!(String::from_utf8_lossy(&exit).trim(), "0", "q exits 0");
    let _ = py.wait();
}

/// An HTTPS webhook: a CA of its own, a certificate for `localhost` it
/// signed, and what was POSTed to it.
async fn https_webhook_sink(
    dir: &std::path::Path,
) -> (
    u16,
    Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    tokio::task::JoinHandle<()>,
) {
    let (ca_cert, leaf, key) = ca_and_leaf("webhook test CA", &["localhost"]);
    std::fs::write(dir.join("hook-ca.pem"), ca_cert.pem()).expect("write ca");
    let cfg =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
            )
            .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let notes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let n = notes.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (acceptor, n) = (acceptor.clone(), n.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(s).await else { return };
                let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let n = n.clone();
                    async move {
                        let host = req.headers().get("host").cloned();
                        if let Some(mut v) = json_body(req).await {
                            v["_host"] =
                                serde_json::json!(host.and_then(|h| h.to_str().ok().map(str::to_string)));
                            n.lock().expect("lock").push(v);
                        }
                        Ok::<_, std::convert::Infallible>(http::Response::new(full("ok")))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, notes, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_an_https_webhook_whose_certificate_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, notes, sink) = https_webhook_sink(dir.path()).await;
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let config = |ca: &str| {
        format!(
            "[alerts]\nwebhook = \"https://localhost:{port}/hook\"\n{ca}interval = \"100ms\"\nwebhook_retries = 0\n\
             [[alert]]\nname = \"a is down\"\nkind = \"server_down\"\npool = \"p\"\nserver = \"a\"\n\
             [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
             [pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n\
             [[pool.server]]\nname = \"a\"\naddress = \"{gone_addr}\"\n[[route]]\npool = \"p\"\n"
        )
    };
    // Against the system's trust store, the test CA is unknown: nothing
    // arrives (the failure is logged).
    let app = start_app(&config(""), dir.path()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        notes.lock().expect("lock").is_empty(),
        "delivered to an untrusted certificate"
    );
    app.shutdown().await;
    // With webhook_ca, the notification arrives over TLS, Host naming the URL's host.
    let app = start_app(&config("webhook_ca = \"hook-ca.pem\"\n"), dir.path()).await;
    let fired = wait_until(Duration::from_secs(10), || async {
        !notes.lock().expect("lock").is_empty()
    })
    .await;
    assert!(fired.is_some(), "no notification over https");
    let n = notes.lock().expect("lock")[0].clone();
    assert_eq!(
        (n["alert"].as_str(), n["status"].as_str()),
        (Some("a is down"), Some("firing")),
        "{n}"
    );
    assert_eq!(n["_host"], format!("localhost:{port}"), "{n}");
    app.shutdown().await;
    sink.abort();
}

/// What the dashboard reads beyond counters, from the API: the tail of
/// failing requests (a server that refuses connections: 502 with where
/// it went), the changes made (a drain, a weight, a refused reload), the
/// configuration view without secrets, connections by protocol, and
/// changes refused when a browser says they come from another site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_failures_changes_and_the_config_and_refuses_cross_site_changes() {
    let up = Backend::named("up").await;
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone_addr = gone.local_addr().expect("addr");
    drop(gone);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("rampart.toml");
    let toml = format!(
        "[admin]\naddress = \"127.0.0.1:0\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"up\"\naddress = \"{}\"\n\
         [[pool]]\nname = \"dead\"\nretries = 0\n[[pool.server]]\nname = \"gone\"\naddress = \"{gone_addr}\"\n\
         [[pool]]\nname = \"ramp\"\nslow_start = \"60s\"\n[pool.health_check]\ntype = \"tcp\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\n\
         [[pool.server]]\nname = \"new\"\naddress = \"{}\"\n\
         [[route]]\npool = \"web\"\n[[route]]\npath = \"/dead\"\npool = \"dead\"\n",
        up.addr, up.addr
    );
    std::fs::write(&config, &toml).expect("config");
    let app = start_app_file(&config).await;
    let ad = app.admin().expect("admin");
    let web = listener(&app, "web");
    let mut c = h1(web).await;
    let resp = c.go(get("/dead/end?q=1", "shop.test")).await.expect("answer");
    assert_eq!(resp.status(), 502);
    let rid = resp.headers()["x-request-id"].to_str().expect("id").to_string();
    let _ = read(resp).await;
    let resp = c.go(get("/", "shop.test")).await.expect("answer");
    assert_eq!(resp.status(), 200);
    let _ = read(resp).await;

    let (status, _) = admin(ad, "POST", "/api/pools/web/servers/up/drain", None).await;
    assert_eq!(status, 202);
    let (status, _) = admin(
        ad,
        "PUT",
        "/api/pools/web/servers/up/weight",
        Some("{\"weight\": 3}"),
    )
    .await;
    assert_eq!(status, 200);
    std::fs::write(&config, "[[listener]]\nname = \"web\"\n").expect("broken config");
    let (status, v) = admin(ad, "POST", "/api/reload", None).await;
    assert_eq!(status, 400, "{v}");

    let (_, stats) = admin(ad, "GET", "/api/stats", None).await;
    let f = &stats["failures"][0];
    assert_eq!(f["status"], 502, "{stats}");
    assert_eq!(f["host"], "shop.test", "{f}");
    assert_eq!(f["path"], "/dead/end?q=1", "{f}");
    assert_eq!(f["server"], "gone", "{f}");
    assert_eq!(f["request_id"], rid.as_str(), "{f}");
    assert_eq!(f["method"], "GET", "{f}");
    assert!(f["error"].is_string(), "{f}");
    assert_eq!(
        stats["failures"].as_array().map(Vec::len),
        Some(1),
        "a 200 is not a failure"
    );
    let kinds: Vec<&str> = stats["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["drain", "weight", "reload_refused"], "{stats}");
    assert_eq!(stats["changes"][0]["target"], "web/up");
    assert_eq!(stats["changes"][1]["detail"], "weight 3");
    let web_listener = &stats["listeners"][0];
    assert_eq!(web_listener["protocols"]["HTTP/1.1"], 1, "{web_listener}");
    assert_eq!(web_listener["protocols"]["HTTP/2"], 0, "{web_listener}");
    assert!(stats["totals"]["qps_5xx"].is_number(), "{stats}");

    // A server that just came up takes a growing share of its traffic.
    let ramping = wait_until(Duration::from_secs(5), || async {
        server_info(ad, "ramp", "new")
            .await
            .is_some_and(|s| s["slow_start"].as_f64().is_some_and(|f| f > 0.0 && f < 1.0))
    })
    .await;
    assert!(ramping.is_some(), "{:?}", server_info(ad, "ramp", "new").await);

    let (status, view) = admin(ad, "GET", "/api/config", None).await;
    assert_eq!(status, 200);
    assert_eq!(view["version"], env!("CARGO_PKG_VERSION"));
    assert!(view["uptime_seconds"].is_u64(), "{view}");
    assert_eq!(view["last_reload"]["ok"], false, "{view}");
    assert!(
        view["last_reload"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rampart.toml")),
        "the refusal names the file: {view}"
    );
    assert_eq!(view["routes"][1]["path_prefix"], "/dead", "{view}");
    assert_eq!(view["routes"][1]["pool"], "dead", "{view}");
    assert_eq!(view["pools"][0]["algorithm"], "round_robin", "{view}");
    assert_eq!(view["listeners"][0]["protocol"], "http", "{view}");

    // Changes from another site: refused whatever the method; reads are not.
    for (header, value) in [
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
    ] {
        let answer = raw(
            ad,
            format!(
                "POST /api/pools/web/servers/up/undrain HTTP/1.1\r\nHost: {ad}\r\n{header}: {value}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{header}: {value}: {answer}");
        assert!(answer.contains("another site"), "{answer}");
    }
    let same = raw(
        ad,
        format!(
            "POST /api/pools/web/servers/up/undrain HTTP/1.1\r\nHost: {ad}\r\nOrigin: http://{ad}\r\n\
             Sec-Fetch-Site: same-origin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert!(same.starts_with("HTTP/1.1 200"), "{same}");
    let read_ok = raw(
        ad,
        format!("GET /api/pools HTTP/1.1\r\nHost: {ad}\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(read_ok.starts_with("HTTP/1.1 200"), "{read_ok}");
    app.shutdown().await;
}
