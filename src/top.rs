//! `rampart top`: a terminal view of a running instance, refreshed every
//! second from its admin API (`GET /api/stats`): totals, every pool and
//! server with health, state, weight, in-flight, rates and latencies,
//! listeners and certificates, and TCP listeners with their sessions,
//! bytes and database roles.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// Runs the view until interrupted (or once, with `once`). Exits 1 with a
/// message on stderr when the admin API cannot be reached or refuses the
/// first request (any request, with `once`).
pub fn run(admin: SocketAddr, token: Option<String>, once: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let auth = token.map(|t| format!("Bearer {t}"));
        // Until one frame has been shown, a failure ends the command (with
        // --once, every failure does); afterwards the view shows it and
        // keeps trying, so that it outlives a restart of the instance.
        let mut shown = false;
        loop {
            let frame = match crate::client::send(
                admin,
                "GET",
                "/api/stats",
                auth.as_deref(),
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            {
                Ok((200, body)) => serde_json::from_str::<Value>(&body)
                    .map(|v| render(&v, admin))
                    .map_err(|e| format!("unexpected answer from the admin API at {admin}: {e}")),
                Ok((401, _)) => Err(format!(
                    "the admin API at {admin} refused the token (401): check [admin] token in the config"
                )),
                Ok((status, body)) => Err(format!(
                    "the admin API at {admin} answered {status}: {}",
                    body.trim_end()
                )),
                Err(e) => Err(format!(
                    "cannot reach the admin API at {admin}: {e} (is rampart running, with its admin API there?)"
                )),
            };
            let frame = match frame {
                Ok(f) => {
                    shown = true;
                    f
                }
                Err(e) if once || !shown => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
                Err(e) => format!("{e}\n"),
            };
            let mut out = std::io::stdout().lock();
            if once {
                let _ = out.write_all(frame.as_bytes());
                return ExitCode::SUCCESS;
            }
            // Home, clear, frame.
            let _ = write!(out, "\x1b[H\x1b[2J{frame}");
            let _ = out.flush();
            drop(out);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "-".to_string(),
    }
}

fn ms(v: &Value) -> String {
    v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"))
}

/// One screen of text.
pub fn render(s: &Value, admin: SocketAddr) -> String {
    let mut o = String::new();
    let t = &s["totals"];
    let _ = writeln!(
        o,
        "rampart top — {admin}   req/s 1s {}  10s {}  60s {}   p50 {} ms  p99 {} ms   5xx {:.2}%   requests {}",
        num(&t["qps"]["1s"]),
        num(&t["qps"]["10s"]),
        num(&t["qps"]["60s"]),
        ms(&t["latency_ms"]["p50"]),
        ms(&t["latency_ms"]["p99"]),
        t["error_ratio_10s"].as_f64().unwrap_or(0.0) * 100.0,
        num(&t["requests"]),
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<12} {:<14} {:<8} {:<9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "POOL",
        "SERVER",
        "HEALTH",
        "STATE",
        "WEIGHT",
        "INFLIGHT",
        "REQ/S",
        "P50 ms",
        "P99 ms",
        "REQUESTS",
        "5XX"
    );
    for p in s["pools"].as_array().into_iter().flatten() {
        for v in p["servers"].as_array().into_iter().flatten() {
            let health = format!(
                "{}{}",
                v["health"].as_str().unwrap_or("?"),
                if v["ejected"] == true { "*" } else { "" }
            );
            let _ = writeln!(
                o,
                "{:<12} {:<14} {:<8} {:<9} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>7}",
                p["name"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or(""),
                health,
                v["state"].as_str().unwrap_or(""),
                num(&v["weight"]),
                num(&v["in_flight"]),
                num(&v["qps"]["10s"]),
                ms(&v["latency_ms"]["p50"]),
                ms(&v["latency_ms"]["p99"]),
                num(&v["requests"]),
                num(&v["by_class"]["5xx"]),
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<16} {:>11} {:>9} {:>12} {:>12}",
        "LISTENER", "CONNECTIONS", "REQ/S", "BYTES IN", "BYTES OUT"
    );
    for l in s["listeners"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "{:<16} {:>11} {:>9} {:>12} {:>12}",
            l["name"].as_str().unwrap_or(""),
            num(&l["connections"]),
            num(&l["qps"]["10s"]),
            num(&l["bytes_in"]),
            num(&l["bytes_out"]),
        );
        for c in l["certificates"].as_array().into_iter().flatten() {
            let days = c["expires_in_seconds"].as_f64().unwrap_or(0.0) / 86_400.0;
            let _ = writeln!(
                o,
                "  certificate {} expires in {days:.1} days",
                c["name"].as_str().unwrap_or("")
            );
        }
    }
    tcp(&mut o, s);
    fleet(&mut o, s);
    let _ = writeln!(o, "\n(* = ejected)  Ctrl-C to quit");
    o
}

/// The fleet (`[cluster] peers`): each instance and the totals.
fn fleet(o: &mut String, s: &Value) {
    let Some(instances) = s["fleet"]["instances"].as_array() else {
        return;
    };
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<28} {:<8} {:>9} {:>7} {:>9} {:>10} {:>10}",
        "FLEET", "STATUS", "REQ/S", "5XX %", "P99 ms", "SERVERS UP", "REQUESTS"
    );
    let row = |o: &mut String, name: &str, status: &str, v: &Value| {
        let servers = match (v["servers_up"].as_f64(), v["servers"].as_f64()) {
            (Some(u), Some(t)) => format!("{u:.0}/{t:.0}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            o,
            "{:<28} {:<8} {:>9} {:>7} {:>9} {:>10} {:>10}",
            name,
            status,
            num(&v["qps"]["10s"]),
            v["error_ratio_10s"]
                .as_f64()
                .map_or("-".to_string(), |r| format!("{:.2}", r * 100.0)),
            ms(&v["latency_ms"]["p99"]),
            servers,
            num(&v["requests"]),
        );
    };
    for i in instances {
        let name = match i["address"].as_str() {
            Some(a) => format!("{} ({a})", i["name"].as_str().unwrap_or("")),
            None => i["name"].as_str().unwrap_or("").to_string(),
        };
        let status = if i["up"] == true { "up" } else { "DOWN" };
        row(o, &name, status, i);
        if let Some(e) = i["error"].as_str() {
            let _ = writeln!(o, "  {e}");
        }
    }
    let t = &s["fleet"]["totals"];
    let up = format!("{}/{}", num(&t["instances_up"]), num(&t["instances"]));
    row(o, "fleet total", &up, t);
}

/// TCP listeners (with what a database endpoint uses or why it refuses),
/// then the servers of their pools with their sessions and database role.
fn tcp(o: &mut String, s: &Value) {
    let tcp: Vec<&Value> = s["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["tcp"].is_object())
        .collect();
    if tcp.is_empty() {
        return;
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<16} {:<10} {:<7} {:>7} {:>9} {:>12} {:>12} {:>8} {:>8}  USING",
        "TCP LISTENER", "POOL", "ROLE", "ACTIVE", "SESSIONS", "BYTES UP", "BYTES DOWN", "CONNFAIL", "REFUSED"
    );
    for l in tcp {
        let (t, e) = (&l["tcp"], &l["endpoint"]);
        let using = match e["refusing"].as_str() {
            Some(why) => format!("REFUSING: {why}"),
            None => e["using"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        };
        let _ = writeln!(
            o,
            "{:<16} {:<10} {:<7} {:>7} {:>9} {:>12} {:>12} {:>8} {:>8}  {using}",
            l["name"].as_str().unwrap_or(""),
            e["pool"].as_str().unwrap_or(""),
            e["role"].as_str().unwrap_or("-"),
            num(&t["active"]),
            num(&t["sessions"]),
            num(&t["bytes_up"]),
            num(&t["bytes_down"]),
            num(&t["connect_failures"]),
            num(&t["refused"]),
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<12} {:<14} {:<8} {:>7} {:>9} {:>12} {:>12} {:>8}  DATABASE",
        "POOL", "SERVER", "HEALTH", "ACTIVE", "SESSIONS", "BYTES UP", "BYTES DOWN", "CONNFAIL"
    );
    for p in s["pools"].as_array().into_iter().flatten() {
        for v in p["servers"].as_array().into_iter().flatten() {
            let (t, d) = (&v["tcp"], &v["database"]);
            if !t.is_object() && !d.is_object() {
                continue;
            }
            let db = match d["role"].as_str() {
                Some(role) => format!("{role}: {}", d["reason"].as_str().unwrap_or("")),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "{:<12} {:<14} {:<8} {:>7} {:>9} {:>12} {:>12} {:>8}  {db}",
                p["name"].as_str().unwrap_or(""),
                v["name"].as_str().unwrap_or(""),
                v["health"].as_str().unwrap_or("?"),
                num(&t["active"]),
                num(&t["sessions"]),
                num(&t["bytes_up"]),
                num(&t["bytes_down"]),
                num(&t["connect_failures"]),
            );
        }
    }
}
