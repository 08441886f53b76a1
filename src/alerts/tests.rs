//! The evaluator on paused time: one evaluation per interval, one
//! notification when an instance starts firing and one when it stops.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{every, Verdict};
use crate::config::model::{AlertKind, AlertRule};

fn rule() -> AlertRule {
    AlertRule {
        name: "a is down".into(),
        kind: AlertKind::ServerDown {
            pool: "p".into(),
            server: Some("a".into()),
        },
    }
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn one_notification_per_episode_evaluated_every_interval() {
    let down = Arc::new(AtomicBool::new(false));
    let evaluations = Arc::new(AtomicU32::new(0));
    let (tx, mut rx) = mpsc::channel(16);
    let (d, n) = (down.clone(), evaluations.clone());
    let eval = move |_: &[AlertRule]| {
        n.fetch_add(1, SeqCst);
        vec![(
            0,
            Verdict {
                instance: "a".into(),
                firing: d.load(SeqCst),
                value: None,
            },
        )]
    };
    let rules = [rule()];
    let task = tokio::spawn(async move { every(Duration::from_secs(5), &rules, eval, Some(tx)).await });
    settle().await;
    assert_eq!(evaluations.load(SeqCst), 1, "the first evaluation is immediate");
    assert!(rx.try_recv().is_err(), "nothing fires while all is well");
    down.store(true, SeqCst);
    tokio::time::advance(Duration::from_millis(4_999)).await;
    settle().await;
    assert_eq!(evaluations.load(SeqCst), 1, "no evaluation before the interval");
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    let note = rx.try_recv().expect("firing");
    assert_eq!(
        (note["status"].as_str(), note["instance"].as_str()),
        (Some("firing"), Some("a"))
    );
    // Ten more evaluations while it stays down: no repeat.
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(5)).await;
        settle().await;
    }
    assert_eq!(evaluations.load(SeqCst), 12);
    assert!(rx.try_recv().is_err(), "one notification per episode");
    down.store(false, SeqCst);
    tokio::time::advance(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(rx.try_recv().expect("resolved")["status"], "resolved");
    tokio::time::advance(Duration::from_secs(50)).await;
    settle().await;
    assert!(rx.try_recv().is_err());
    task.abort();
}
