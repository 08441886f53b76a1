use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::{HeaderMap, HeaderValue};

use super::super::maglev::{Maglev, TABLE_SIZE};
use super::super::{Algorithm, Balancer, HashKey, PickInput};
use super::{pick_name, pool, servers, weighted, TestRng};

/// The server name picked for each of `keys` (as `x-key` header values).
fn by_key(b: &Balancer, keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            let mut headers = HeaderMap::new();
            headers.insert("x-key", HeaderValue::from_str(k).expect("hex"));
            let input = PickInput {
                client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                headers: &headers,
            };
            pick_name(b, &input)
        })
        .collect()
}

fn header_pool(servers: Vec<std::sync::Arc<super::super::Backend>>) -> Balancer {
    let key = HashKey::parse("header:x-key").expect("valid");
    Balancer::new(Algorithm::Hash, key, None, servers)
}

fn random_keys(n: usize) -> Vec<String> {
    let mut rng = TestRng(42);
    (0..n).map(|_| format!("{:x}", rng.next())).collect()
}

#[test]
fn hash_removal_remaps_few_keys() {
    let keys = random_keys(10_000);
    let all = servers(5);
    let before = by_key(&header_pool(all.clone()), &keys);
    let removed = "s3";
    let rest = all.into_iter().filter(|s| s.name != removed).collect();
    let after = by_key(&header_pool(rest), &keys);
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(moved <= 10_000 / 5 + 500, "{moved} keys moved");
    // Keys of the other servers mostly stay.
    let lost = before.iter().filter(|s| *s == removed).count();
    assert!(moved - lost <= 500, "{} keys of kept servers moved", moved - lost);
}

#[test]
fn hash_is_stable() {
    let keys = random_keys(1_000);
    let a = header_pool(servers(5));
    let b = header_pool(servers(5));
    let first = by_key(&a, &keys);
    assert_eq!(first, by_key(&a, &keys));
    assert_eq!(first, by_key(&b, &keys));
}

#[test]
fn hash_spreads_evenly() {
    let picks = by_key(&header_pool(servers(5)), &random_keys(10_000));
    let mut c: HashMap<String, usize> = HashMap::new();
    for p in picks {
        *c.entry(p).or_insert(0) += 1;
    }
    assert_eq!(c.len(), 5);
    for (name, &n) in &c {
        assert!((1_700..=2_300).contains(&n), "{name}: {n}");
    }
}

#[test]
fn maglev_table_is_balanced_and_weighted() {
    let even = Maglev::new(&servers(5));
    let share = slot_shares(even.table(), 5);
    for s in &share {
        assert!((s - 0.2).abs() < 0.01, "{share:?}");
    }
    let heavy = Maglev::new(&weighted(&[3, 1]));
    let share = slot_shares(heavy.table(), 2);
    assert!((share[0] - 0.75).abs() < 0.02, "{share:?}");
}

fn slot_shares(table: &[u32], n: usize) -> Vec<f64> {
    assert_eq!(table.len(), TABLE_SIZE);
    let mut c = vec![0usize; n];
    for &s in table {
        c[s as usize] += 1;
    }
    c.iter().map(|&x| x as f64 / TABLE_SIZE as f64).collect()
}

#[test]
fn hash_key_falls_back_to_client_ip() {
    let by_ip = pool(Algorithm::Hash, servers(5));
    let by_header = header_pool(servers(5));
    let by_cookie = Balancer::new(
        Algorithm::Hash,
        HashKey::parse("cookie:uid").expect("valid"),
        None,
        servers(5),
    );
    let mut rng = TestRng(3);
    let empty = HeaderMap::new();
    let mut other = HeaderMap::new();
    other.insert("cookie", HeaderValue::from_static("session=1"));
    other.insert("x-other", HeaderValue::from_static("v"));
    for _ in 0..200 {
        let ip = IpAddr::V4(Ipv4Addr::from(rng.next() as u32));
        for h in [&empty, &other] {
            let input = PickInput {
                client_ip: ip,
                headers: h,
            };
            let want = pick_name(&by_ip, &input);
            assert_eq!(pick_name(&by_header, &input), want);
            assert_eq!(pick_name(&by_cookie, &input), want);
        }
    }
}

#[test]
fn hash_uses_header_and_cookie_values() {
    let by_header = header_pool(servers(5));
    let by_cookie = Balancer::new(
        Algorithm::Hash,
        HashKey::parse("cookie:uid").expect("valid"),
        None,
        servers(5),
    );
    let mut rng = TestRng(9);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100 {
        let key = format!("{:x}", rng.next());
        let mut h = HeaderMap::new();
        h.insert("x-key", HeaderValue::from_str(&key).expect("hex"));
        h.append("cookie", HeaderValue::from_static("a=1"));
        let c = format!("b=2; uid=\"{key}\"; c=3");
        h.append("cookie", HeaderValue::from_str(&c).expect("ascii"));
        let mut names = Vec::new();
        for i in 0..5u8 {
            let input = PickInput {
                client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                headers: &h,
            };
            names.push((pick_name(&by_header, &input), pick_name(&by_cookie, &input)));
        }
        // The client IP does not matter; header and cookie hash the same bytes.
        assert!(names.iter().all(|n| *n == names[0]), "{names:?}");
        assert_eq!(names[0].0, names[0].1);
        seen.insert(names[0].0.clone());
    }
    assert_eq!(seen.len(), 5);
}

#[test]
fn hash_ipv4_mapped_matches_ipv4() {
    let b = pool(Algorithm::Hash, servers(5));
    let h = HeaderMap::new();
    let mut rng = TestRng(5);
    for _ in 0..100 {
        let v4 = Ipv4Addr::from(rng.next() as u32);
        let a = PickInput {
            client_ip: IpAddr::V4(v4),
            headers: &h,
        };
        let mapped: Ipv6Addr = v4.to_ipv6_mapped();
        let m = PickInput {
            client_ip: IpAddr::V6(mapped),
            headers: &h,
        };
        assert_eq!(pick_name(&b, &a), pick_name(&b, &m));
    }
}
