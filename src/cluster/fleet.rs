//! The fleet view: once a second, every peer's `GET /api/stats` (with its
//! token), reduced to what the dashboard and `rampart top` show of an
//! instance — rates, errors, latency, servers up — next to this instance's
//! own. A peer that does not answer is shown as down with the reason. The
//! last 15 minutes of each peer's request rate are kept (seeded from the
//! peer's own history at the first answer), so fleet charts start full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::config::model::Peer;

use crate::stats::HISTORY_SECONDS as HISTORY;

/// What is known of one peer.
#[derive(Debug, Default)]
struct PeerState {
    /// The last answer, reduced ([`summary`]); None before any, so the
    /// first poll also asks for the peer's history.
    last: Option<Value>,
    /// Why the last poll failed; None when it answered.
    error: Option<String>,
    /// (Unix ms, req/s over 1 s), oldest first.
    history: VecDeque<(u64, Option<f64>)>,
}

/// The peers and what was last heard from each.
#[derive(Debug)]
pub struct Fleet {
    peers: Vec<Peer>,
    state: Mutex<Vec<PeerState>>,
}

/// Starts polling `peers`; the task runs until aborted.
pub fn start(peers: &[Peer]) -> (Arc<Fleet>, JoinHandle<()>) {
    let fleet = Arc::new(Fleet {
        peers: peers.to_vec(),
        state: Mutex::new(peers.iter().map(|_| PeerState::default()).collect()),
    });
    let task = tokio::spawn(fleet.clone().run());
    (fleet, task)
}

impl Fleet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PeerState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let first: Vec<bool> = self.lock().iter().map(|s| s.last.is_none()).collect();
            let polls = self.peers.iter().zip(first).map(|(p, first)| poll(p, first));
            let answers = futures_util::future::join_all(polls).await;
            let mut state = self.lock();
            for (s, answer) in state.iter_mut().zip(answers) {
                match answer {
                    Ok(doc) => {
                        if s.last.is_none() {
                            for h in doc["history"].as_array().into_iter().flatten() {
                                s.history.push_back((
                                    h["time_unix_ms"].as_u64().unwrap_or(0),
                                    h["totals"]["qps"]["1s"].as_f64(),
                                ));
                            }
                        }
                        let sum = summary(&doc);
                        s.history.push_back((
                            doc["time_unix_ms"].as_u64().unwrap_or(0),
                            sum["qps"]["1s"].as_f64(),
                        ));
                        s.last = Some(sum);
                        s.error = None;
                    }
                    Err(e) => s.error = Some(e),
                }
                while s.history.len() > HISTORY {
                    s.history.pop_front();
                }
            }
        }
    }

    /// The fleet: this instance (from its own `/api/stats` document `me`)
    /// and every peer, then totals over the instances that answered.
    pub fn view(&self, me: &Value) -> Value {
        let mut instances = vec![{
            let mut s = summary(me);
            s["name"] = json!("this instance");
            s["up"] = json!(true);
            s
        }];
        let state = self.lock();
        for (p, s) in self.peers.iter().zip(state.iter()) {
            let mut v = s.last.clone().unwrap_or_else(|| json!({}));
            v["name"] = json!(p.name);
            v["address"] = json!(p.addr);
            v["up"] = json!(s.error.is_none() && s.last.is_some());
            v["error"] = match (&s.error, &s.last) {
                (Some(e), _) => json!(e),
                (None, None) => json!("not polled yet"),
                (None, Some(_)) => Value::Null,
            };
            instances.push(v);
        }
        let live: Vec<&Value> = instances.iter().filter(|i| i["up"] == true).collect();
        let sum = |f: &dyn Fn(&Value) -> Option<f64>| live.iter().filter_map(|i| f(i)).sum::<f64>();
        let requests = sum(&|i| i["requests"].as_f64());
        let errors = sum(&|i| i["errors_10s"].as_f64());
        let qps10 = sum(&|i| i["qps"]["10s"].as_f64());
        let totals = json!({
            "instances": instances.len(),
            "instances_up": live.len(),
            "qps": {"1s": sum(&|i| i["qps"]["1s"].as_f64()), "10s": qps10, "60s": sum(&|i| i["qps"]["60s"].as_f64())},
            "requests": requests,
            "error_ratio_10s": if qps10 > 0.0 { errors / (qps10 * 10.0) } else { 0.0 },
            "servers_up": sum(&|i| i["servers_up"].as_f64()),
            "servers": sum(&|i| i["servers"].as_f64()),
        });
        json!({"instances": instances, "totals": totals})
    }

    /// Each peer's request rate over the last 15 minutes, for fleet charts.
    pub fn history(&self) -> Value {
        let state = self.lock();
        let peers: Vec<Value> = self
            .peers
            .iter()
            .zip(state.iter())
            .map(|(p, s)| {
                let points: Vec<Value> = s.history.iter().map(|(t, q)| json!([t, q])).collect();
                json!({"name": p.name, "points": points})
            })
            .collect();
        Value::Array(peers)
    }
}

/// One poll of a peer's stats (with its history the first time).
async fn poll(p: &Peer, with_history: bool) -> Result<Value, String> {
    let auth = p.token.as_ref().map(|t| format!("Bearer {t}"));
    let path = if with_history {
        "/api/stats?history=1"
    } else {
        "/api/stats"
    };
    let (status, body) = crate::client::send(
        p.addr,
        "GET",
        path,
        auth.as_deref(),
        Bytes::new(),
        Duration::from_secs(1),
    )
    .await?;
    match status {
        200 => serde_json::from_str(&body).map_err(|e| format!("not a stats document: {e}")),
        401 => Err("the peer refused the token (401)".into()),
        s => Err(format!("the peer answered {s}")),
    }
}

/// What the fleet view shows of an instance's `/api/stats` document.
pub fn summary(doc: &Value) -> Value {
    let t = &doc["totals"];
    let servers: Vec<&Value> = doc["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["servers"].as_array().into_iter().flatten())
        .collect();
    let up = servers
        .iter()
        .filter(|s| s["health"] != "down" && s["ejected"] != true)
        .count();
    let qps10 = t["qps"]["10s"].as_f64().unwrap_or(0.0);
    let ratio = t["error_ratio_10s"].as_f64().unwrap_or(0.0);
    json!({
        "qps": t["qps"],
        "requests": t["requests"],
        "error_ratio_10s": t["error_ratio_10s"],
        "errors_10s": ratio * qps10 * 10.0,
        "latency_ms": {"p99": t["latency_ms"]["p99"]},
        "servers_up": up,
        "servers": servers.len(),
        // With [fleet]: the configuration revision it serves.
        "revision": doc["fleet_sync"]["revision"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(qps: f64, ratio: f64, healths: &[&str]) -> Value {
        json!({
            "time_unix_ms": 1000,
            "totals": {"qps": {"1s": qps, "10s": qps, "60s": qps}, "requests": 100, "error_ratio_10s": ratio, "latency_ms": {"p99": 3.0}},
            "pools": [{"name": "web", "servers": healths.iter().map(|h| json!({"health": h, "ejected": false})).collect::<Vec<_>>()}],
        })
    }

    #[test]
    fn the_view_sums_the_instances_that_answer_and_shows_the_others_down() {
        let peers = vec![
            Peer {
                name: "lb2".into(),
                addr: "127.0.0.1:9901".parse().expect("addr"),
                token: None,
            },
            Peer {
                name: "lb3".into(),
                addr: "127.0.0.1:9902".parse().expect("addr"),
                token: None,
            },
        ];
        let fleet = Fleet {
            peers,
            state: Mutex::new(vec![
                PeerState {
                    last: Some(summary(&doc(30.0, 0.5, &["up", "down"]))),
                    ..Default::default()
                },
                PeerState {
                    error: Some("connection refused".into()),
                    ..Default::default()
                },
            ]),
        };
        let v = fleet.view(&doc(10.0, 0.0, &["up", "up"]));
        assert_eq!(v["instances"][0]["name"], "this instance");
        assert_eq!(v["instances"][1]["up"], true);
        assert_eq!(v["instances"][2]["up"], false);
        assert_eq!(v["instances"][2]["error"], "connection refused");
        let t = &v["totals"];
        assert_eq!(t["qps"]["10s"], 40.0);
        assert_eq!(t["instances_up"], 2);
        assert_eq!(t["servers_up"], 3.0);
        assert_eq!(t["servers"], 4.0);
        // 150 errors (30 req/s × 10 s × 0.5) out of 400 requests.
        assert_eq!(t["error_ratio_10s"], 150.0 / 400.0);
    }
}
