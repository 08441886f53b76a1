//! Bans shared through Redis: a ban is a key `rampart:ban:ADDRESS` (the
//! reason, expiring with the ban) and a message on the channel
//! `rampart:bans`; a lift deletes the key and says so on the channel.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::Cluster;
use crate::firewall::bans::{BanNote, Bans};

pub(super) const CHANNEL: &str = "rampart:bans";
const PREFIX: &str = "rampart:ban:";

/// Applies every ban stored in Redis (at (re)connection).
pub(super) async fn load(conn: &mut ConnectionManager, bans: &Bans) -> redis::RedisResult<()> {
    let keys: Vec<String> = {
        let mut iter = conn.scan_match::<_, String>(format!("{PREFIX}*")).await?;
        let mut keys = Vec::new();
        while let Some(k) = iter.next().await {
            keys.push(k?);
            if keys.len() >= 100_000 {
                break;
            }
        }
        keys
    };
    // Each key's time to live and reason, a thousand keys per round trip.
    for chunk in keys.chunks(1000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.pttl(k).get(k);
        }
        let answers: Vec<(i64, Option<String>)> = pipe.query_async(conn).await?;
        for (k, (ttl_ms, reason)) in chunk.iter().zip(answers) {
            let Some(address) = k.strip_prefix(PREFIX).and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            if ttl_ms > 0 {
                bans.apply(BanNote::Banned {
                    address,
                    duration: Duration::from_millis(ttl_ms as u64),
                    reason: reason.unwrap_or_default(),
                });
            }
        }
    }
    Ok(())
}

/// Until the connection fails: applies the notes others publish (on
/// `pubsub`, already subscribed to [`CHANNEL`]) and stores and publishes
/// the ones made here. Returns why it stopped.
pub(super) async fn exchange(
    cluster: &Cluster,
    conn: &mut ConnectionManager,
    pubsub: redis::aio::PubSub,
    outbox: &mut mpsc::Receiver<BanNote>,
) -> String {
    let mut messages = pubsub.into_on_message();
    // A decision that failed marks shared state down; once a second, while
    // it is marked down, a PING says whether it is back.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if cluster.is_up() {
                    continue;
                }
                let ping = tokio::time::timeout(Duration::from_secs(1), redis::cmd("PING").query_async::<String>(conn)).await;
                match ping {
                    Ok(Ok(_)) => cluster.set_up(true, ""),
                    Ok(Err(e)) => return format!("PING: {e}"),
                    Err(_) => return "PING: no answer within 1s".into(),
                }
            }
            msg = messages.next() => {
                let Some(msg) = msg else { return "the subscription ended".into() };
                let Ok(text) = msg.get_payload::<String>() else { continue };
                if let Some(note) = decode(&text, cluster.id) {
                    cluster.bans.apply(note);
                }
            }
            note = outbox.recv() => {
                let Some(note) = note else { return "bans are no longer shared".into() };
                if let Err(e) = publish(conn, &note, cluster.id).await {
                    return format!("sharing a ban: {e}");
                }
            }
        }
    }
}

async fn publish(conn: &mut ConnectionManager, note: &BanNote, from: u64) -> redis::RedisResult<()> {
    match note {
        BanNote::Banned {
            address,
            duration,
            reason,
        } => {
            let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1);
            let _: () = conn.pset_ex(format!("{PREFIX}{address}"), reason, ms).await?;
        }
        BanNote::Lifted { address } => {
            let _: () = conn.del(format!("{PREFIX}{address}")).await?;
        }
    }
    let _: () = conn.publish(CHANNEL, encode(note, from)).await?;
    Ok(())
}

fn encode(note: &BanNote, from: u64) -> String {
    match note {
        BanNote::Banned {
            address,
            duration,
            reason,
        } => json!({"from": from, "op": "ban", "address": address, "ms": duration.as_millis() as u64, "reason": reason}),
        BanNote::Lifted { address } => json!({"from": from, "op": "lift", "address": address}),
    }
    .to_string()
}

/// A note another instance published (None: ours, or not understood).
fn decode(text: &str, me: u64) -> Option<BanNote> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v["from"].as_u64() == Some(me) {
        return None;
    }
    let address: IpAddr = v["address"].as_str()?.parse().ok()?;
    match v["op"].as_str()? {
        "ban" => Some(BanNote::Banned {
            address,
            duration: Duration::from_millis(v["ms"].as_u64()?),
            reason: v["reason"].as_str().unwrap_or("").to_string(),
        }),
        "lift" => Some(BanNote::Lifted { address }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_cross_as_json_and_our_own_are_skipped() {
        let ban = BanNote::Banned {
            address: "192.0.2.7".parse().expect("ip"),
            duration: Duration::from_secs(60),
            reason: "10 violations".into(),
        };
        let lift = BanNote::Lifted {
            address: "2001:db8::1".parse().expect("ip"),
        };
        for note in [ban, lift] {
            let text = encode(&note, 1);
            assert_eq!(decode(&text, 2), Some(note.clone()), "{text}");
            assert_eq!(decode(&text, 1), None, "our own note");
        }
        assert_eq!(decode("not json", 2), None);
    }
}
