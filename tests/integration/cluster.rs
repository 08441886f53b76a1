//! Several instances as one through a real `redis-server` (started by the
//! tests on a free port, without persistence): cluster-scope rate limits
//! count across instances, bans made on one are enforced by the others
//! (and by one started later), and when Redis goes away the instances fall
//! back to their local limits without failing a request.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

struct Redis {
    port: u16,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    async fn start_on(port: u16, dir: tempfile::TempDir) -> Redis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (Debian package redis-server) is installed");
        let up = wait_until(Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(up.is_some(), "redis-server on {port} did not start");
        Redis {
            port,
            child,
            _dir: dir,
        }
    }

    async fn start() -> Redis {
        Redis::start_on(free_port(), tempfile::tempdir().expect("tempdir")).await
    }

    async fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill().await;
        (self.port, self._dir)
    }
}

fn config(redis: u16, backend: SocketAddr, rule: &str) -> String {
    format!(
        "[cluster]\nredis = \"redis://127.0.0.1:{redis}/0\"\n\
         [[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\n\
         [[pool.server]]\naddress = \"{backend}\"\n[[route]]\npool = \"p\"\n{rule}"
    )
}

const TEN_PER_SECOND: &str =
    "[[rule]]\nname = \"shared\"\naction = \"rate_limit\"\nrate = 10\nburst = 10\nscope = \"cluster\"\n";

/// Waits until the instance reports its Redis reachable.
async fn connected(app: &rampart::app::RunningApp) {
    let ad = app.admin().expect("admin");
    let up = wait_until(Duration::from_secs(10), || async {
        metrics(ad).await.contains("rampart_cluster_up 1")
    })
    .await;
    assert!(up.is_some(), "never connected to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_rate_limit_counts_across_instances() {
    let redis = Redis::start().await;
    let be = Backend::named("web-01").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config(redis.port, be.addr, TEN_PER_SECOND);
    let (a, b) = (
        start_app(&toml, dir.path()).await,
        start_app(&toml, dir.path()).await,
    );
    connected(&a).await;
    connected(&b).await;
    let (mut ca, mut cb) = (h1(listener(&a, "web")).await, h1(listener(&b, "web")).await);
    // Requests alternate between the two instances for 3 s, as fast as
    // they are answered, all from one client.
    let started = Instant::now();
    let (mut admitted, mut limited, mut other) = (0u32, 0u32, 0u32);
    let mut i = 0u32;
    while started.elapsed() < Duration::from_secs(3) && i < 20_000 {
        let c = if i % 2 == 0 { &mut ca } else { &mut cb };
        let (status, _, _) = read(c.go(get("/", "x")).await.expect("response")).await;
        match status {
            200 => admitted += 1,
            429 => limited += 1,
            _ => other += 1,
        }
        i += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    // One fleet-wide bucket: its burst plus 10 a second. Two local
    // buckets would admit about twice that.
    let expected = 10.0 + 10.0 * secs;
    eprintln!("cluster limit: {admitted} admitted, {limited} limited in {secs:.2} s (fleet allowance {expected:.0})");
    assert_eq!(other, 0);
    assert!(limited > 0, "nothing was limited");
    assert!(
        f64::from(admitted) <= expected + 2.0,
        "{admitted} admitted, more than {expected:.0}"
    );
    assert!(
        f64::from(admitted) >= expected * 0.8,
        "{admitted} admitted, far under {expected:.0}"
    );
    let m = metrics(a.admin().expect("admin")).await;
    assert!(m.contains("rampart_cluster_fallbacks_total 0"), "{m}");
    a.shutdown().await;
    b.shutdown().await;
    drop(redis);
}

/// Whether a new connection to `addr` is refused at accept (a ban): the
/// request gets no answer.
async fn banned(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return true;
    };
    if s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return true;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    !out.starts_with(b"HTTP/1.1 200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_made_on_one_instance_is_enforced_by_the_others() {
    let redis = Redis::start().await;
    let be = Backend::named("web-01").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = config(redis.port, be.addr, "");
    let (a, b) = (
        start_app(&toml, dir.path()).await,
        start_app(&toml, dir.path()).await,
    );
    connected(&a).await;
    connected(&b).await;
    let (wa, wb) = (listener(&a, "web"), listener(&b, "web"));
    assert!(!banned(wb).await);
    let (status, v) = admin(
        a.admin().expect("admin"),
        "POST",
        "/api/bans",
        Some(r#"{"address": "127.0.0.1", "duration": "10m", "reason": "test"}"#),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let took = wait_until(Duration::from_secs(5), || async { banned(wb).await }).await;
    assert!(took.is_some(), "the other instance never enforced the ban");
    assert!(took < Some(Duration::from_secs(1)), "took {took:?}");
    // An instance started after the ban enforces it too.
    let c = start_app(&toml, dir.path()).await;
    connected(&c).await;
    let wc = listener(&c, "web");
    let at_start = wait_until(Duration::from_secs(5), || async { banned(wc).await }).await;
    assert!(at_start.is_some(), "an instance started later ignores the ban");
    let (_, bans) = admin(c.admin().expect("admin"), "GET", "/api/bans", None).await;
    assert!(bans.to_string().contains("127.0.0.1"), "{bans}");
    // One ban made, counted once over the fleet: by the instance that made it.
    for (app, made) in [(&a, 1.0), (&b, 0.0), (&c, 0.0)] {
        let text = metrics(app.admin().expect("admin")).await;
        assert_eq!(
            metric(&text, "rampart_firewall_bans_total "),
            Some(made),
            "{text}"
        );
    }
    // Lifted on b: lifted everywhere.
    let (status, _) = admin(b.admin().expect("admin"), "DELETE", "/api/bans/127.0.0.1", None).await;
    assert_eq!(status, 200);
    let lifted = wait_until(Duration::from_secs(5), || async {
        !banned(wa).await && !banned(wc).await
    })
    .await;
    assert!(lifted.is_some(), "the lift did not reach the others");
    for app in [a, b, c] {
        app.shutdown().await;
    }
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_local_limits_decide_and_no_request_fails() {
    let redis = Redis::start().await;
    let be = Backend::named("web-01").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A limit no load here reaches, locally or across the fleet.
    let rule = "[[rule]]\nname = \"roomy\"\naction = \"rate_limit\"\nrate = 100000\nscope = \"cluster\"\n";
    let app = start_app(&config(redis.port, be.addr, rule), dir.path()).await;
    connected(&app).await;
    let ad = app.admin().expect("admin");
    let web = listener(&app, "web");
    let load = Load::start(web, "/", 1_000_000, Duration::from_secs(30));
    wait_until(Duration::from_secs(5), || async { load.done() >= 200 }).await;
    // Redis goes away under load...
    let (port, rdir) = redis.stop().await;
    let fell_back = wait_until(Duration::from_secs(10), || async {
        let m = metrics(ad).await;
        m.contains("rampart_cluster_up 0")
            && metric(&m, "rampart_cluster_fallbacks_total").unwrap_or(0.0) > 0.0
    })
    .await;
    assert!(fell_back.is_some(), "no fallback counted: {}", metrics(ad).await);
    let during = load.done();
    wait_until(Duration::from_secs(5), || async { load.done() >= during + 200 }).await;
    // ...and comes back on the same port.
    let redis = Redis::start_on(port, rdir).await;
    let back = wait_until(Duration::from_secs(10), || async {
        metrics(ad).await.contains("rampart_cluster_up 1")
    })
    .await;
    assert!(back.is_some(), "never reconnected");
    let decided = metric(&metrics(ad).await, "rampart_cluster_decisions_total").unwrap_or(0.0);
    let more = wait_until(Duration::from_secs(5), || async {
        metric(&metrics(ad).await, "rampart_cluster_decisions_total").unwrap_or(0.0) > decided
    })
    .await;
    assert!(more.is_some(), "decisions did not go back to Redis");
    // Redis stalls (busy for 1 s) without dropping a connection: decisions
    // fall back while it does not answer, and go back to it afterwards.
    let fallbacks = metric(&metrics(ad).await, "rampart_cluster_fallbacks_total").unwrap_or(0.0);
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut r = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("redis");
        r.write_all(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n1\r\n")
            .await
            .expect("write");
        let mut ok = [0u8; 5];
        r.read_exact(&mut ok).await.expect("DEBUG SLEEP answered");
        assert_eq!(&ok, b"+OK\r\n");
    }
    let stalled = metric(&metrics(ad).await, "rampart_cluster_fallbacks_total").unwrap_or(0.0);
    assert!(stalled > fallbacks, "no fallback while Redis stalled");
    let decided = metric(&metrics(ad).await, "rampart_cluster_decisions_total").unwrap_or(0.0);
    let resumed = wait_until(Duration::from_secs(10), || async {
        let m = metrics(ad).await;
        m.contains("rampart_cluster_up 1")
            && metric(&m, "rampart_cluster_decisions_total").unwrap_or(0.0) > decided
    })
    .await;
    assert!(
        resumed.is_some(),
        "decisions did not go back to Redis after the stall: {}",
        metrics(ad).await
    );
    let report = load.stop().await;
    eprintln!("redis outage under load: {report:?}");
    assert_eq!(
        report.failed, 0,
        "requests failed (non-200 or errors): {report:?}"
    );
    assert!(report.ok > 400, "{report:?}");
    app.shutdown().await;
    drop(redis);
}
