//! `[runtime]`, `[tls]`, `[metrics]`, and what any section's mistakes
//! look like before validation (wrong types, unknown keys).

use std::path::PathBuf;

use super::{loads, refuses};

#[test]
fn runtime_values() {
    loads(
        |m| (m.workers, m.state_dir.clone()),
        vec![
            (
                "defaults: a worker per core, .rampart",
                "".into(),
                (4, PathBuf::from("/etc/rampart/.rampart")),
            ),
            (
                "0 workers is the default",
                "[runtime]\nworkers = 0\n".into(),
                (4, "/etc/rampart/.rampart".into()),
            ),
            (
                "one worker",
                "[runtime]\nworkers = 1\n".into(),
                (1, "/etc/rampart/.rampart".into()),
            ),
            (
                "the most workers",
                "[runtime]\nworkers = 1024\n".into(),
                (1024, "/etc/rampart/.rampart".into()),
            ),
            (
                "a relative state_dir is resolved against the config's folder",
                "[runtime]\nstate_dir = \"state/./x/..\"\n".into(),
                (4, "/etc/rampart/state".into()),
            ),
            (
                "an absolute state_dir is kept",
                "[runtime]\nstate_dir = \"/var/lib/rampart\"\n".into(),
                (4, "/var/lib/rampart".into()),
            ),
            (
                "`..` climbs out of the folder",
                "[runtime]\nstate_dir = \"../x\"\n".into(),
                (4, "/etc/x".into()),
            ),
        ],
    );
}

#[test]
fn runtime_mistakes() {
    refuses(vec![
        (
            "too many workers",
            "[runtime]\nworkers = 1025\n".into(),
            "2:11: runtime.workers: at most 1024 worker threads",
        ),
        (
            "negative workers",
            "[runtime]\nworkers = -1\n".into(),
            "2:11: runtime.workers: invalid value: integer `-1`, expected a whole number, at most 4294967295",
        ),
        (
            "workers as text",
            "[runtime]\nworkers = \"4\"\n".into(),
            "2:11: runtime.workers: invalid type: string \"4\", expected a whole number, at most 4294967295",
        ),
        (
            "a misspelt key",
            "[runtime]\nworker = 4\n".into(),
            "2:1: runtime: unknown field `worker`, did you mean `workers`?",
        ),
        (
            "a misspelt table",
            "[runtim]\nworkers = 4\n".into(),
            "1:2: unknown field `runtim`, did you mean `runtime`?",
        ),
        (
            "not TOML",
            "[runtime\n".into(),
            "1:9: invalid table header\nexpected `.`, `]`",
        ),
    ]);
}

#[test]
fn tls_and_metrics_switches() {
    loads(
        |m| (m.generate_local_ca, m.metrics_enabled),
        vec![
            ("defaults", "".into(), (true, true)),
            (
                "no local CA",
                "[tls]\ngenerate_local_ca = false\n".into(),
                (false, true),
            ),
            (
                "no request counters",
                "[metrics]\nenabled = false\n".into(),
                (true, false),
            ),
        ],
    );
    refuses(vec![
        (
            "a switch as text",
            "[metrics]\nenabled = \"yes\"\n".into(),
            "2:11: metrics.enabled: invalid type: string \"yes\", expected true or false",
        ),
        (
            "an unknown tls key",
            "[tls]\ncertificate = \"x\"\n".into(),
            "2:1: tls: unknown field `certificate`, expected one of `generate_local_ca`",
        ),
    ]);
}

#[test]
fn fleet_secret_key() {
    let fleet = "[fleet]\netcd = [\"http://127.0.0.1:2379\"]\nnode = \"lb1\"\n";
    let acme = "[[listener]]\nname = \"site\"\naddress = \"127.0.0.1:443\"\nprotocol = \"https\"\n\
                [listener.acme]\ndirectory = \"https://ca.test/dir\"\nnames = [\"a.test\"]\n";
    loads(
        |m| m.fleet.as_ref().and_then(|f| f.secret_key).map(|k| (k[0], k[31])),
        vec![
            ("no key", fleet.into(), None),
            (
                "64 hex digits",
                format!("{fleet}secret_key_file = \"fleet.key\"\n"),
                Some((0, 31)),
            ),
            (
                "a fleet with ACME and its key",
                format!("{fleet}secret_key_file = \"fleet.key\"\n{acme}"),
                Some((0, 31)),
            ),
        ],
    );
    refuses(vec![
        (
            "not a key",
            format!("{fleet}secret_key_file = \"short.key\"\n"),
            "4:19: fleet.secret_key_file: /etc/rampart/short.key must hold 64 hex digits (a 256-bit key), e.g. made by `openssl rand -hex 32`",
        ),
        (
            "a fleet with ACME and no key",
            format!("{fleet}{acme}"),
            "2:8: fleet.secret_key_file: listener `site` orders certificates from an ACME CA, which a fleet orders once and shares through etcd sealed: set [fleet] secret_key_file (64 hex digits, the same on every instance; `openssl rand -hex 32`)",
        ),
    ]);
}
