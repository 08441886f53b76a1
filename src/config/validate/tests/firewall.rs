//! `[firewall]` and `[bans]`.

use std::time::Duration;

use super::{loads, refuses};
use crate::config::model::BanPolicy;

#[test]
fn firewall() {
    loads(
        |m| {
            (
                m.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                m.max_connections_per_client,
                m.new_connections_per_client_per_second,
            )
        },
        vec![
            ("defaults: no proxies, no limits", "".into(), (Vec::new(), 0, 0)),
            (
                "proxies as blocks and addresses, limits",
                "[firewall]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\nmax_connections_per_client = 10\n\
                 new_connections_per_client_per_second = 5\n"
                    .into(),
                (vec!["10.0.0.0/8".into(), "2001:db8::1/128".into()], 10, 5),
            ),
        ],
    );
    refuses(vec![
        (
            "a bad proxy block",
            "[firewall]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.test\"]\n".into(),
            "2:19: firewall.trusted_proxies: `proxy.test` is not a CIDR block or an IP address",
        ),
        (
            "spaces are not trimmed here",
            "[firewall]\ntrusted_proxies = [\" 10.0.0.1\"]\n".into(),
            "2:19: firewall.trusted_proxies: ` 10.0.0.1` is not a CIDR block or an IP address",
        ),
        (
            "a negative limit",
            "[firewall]\nmax_connections_per_client = -1\n".into(),
            "2:30: firewall.max_connections_per_client: invalid value: integer `-1`, expected a whole number, \
             at most 4294967295",
        ),
    ]);
}

#[test]
fn bans() {
    loads(
        |m| m.bans,
        vec![
            ("no automatic bans by default", "".into(), None),
            (
                "window and duration alone do nothing",
                "[bans]\nwindow = \"1s\"\n".into(),
                None,
            ),
            (
                "after one violation, default window and duration",
                "[bans]\nafter = 1\n".into(),
                Some(BanPolicy {
                    after: 1,
                    window: Duration::from_secs(60),
                    duration: Duration::from_secs(600),
                }),
            ),
            (
                "every key",
                "[bans]\nafter = 5\nwindow = \"10s\"\nduration = \"1h\"\n".into(),
                Some(BanPolicy {
                    after: 5,
                    window: Duration::from_secs(10),
                    duration: Duration::from_secs(3600),
                }),
            ),
        ],
    );
    refuses(vec![
        (
            "after zero",
            "[bans]\nafter = 0\n".into(),
            "2:9: bans.after: at least 1 violation",
        ),
        (
            "a bad window",
            "[bans]\nafter = 3\nwindow = \"a minute\"\n".into(),
            "3:10: bans.window: `a minute` is not a duration: write it like \"5s\" or \"250ms\"",
        ),
        (
            "a bad duration",
            "[bans]\nafter = 3\nduration = \"10\"\n".into(),
            "3:12: bans.duration: `10` has no unit: write it like \"5s\", \"250ms\" or \"2m\"",
        ),
    ]);
}
