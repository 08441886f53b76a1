use super::super::weighted::{Swrr, Weighted, TABLE_CAP};
use super::super::Algorithm;
use super::{counts, pick_name, pool, weighted, TestRng};

/// `n` picks from a Weighted pool, as server indices.
fn sequence(w: &Weighted, n: usize) -> Vec<usize> {
    (0..n).map(|_| w.pick(|_| true).expect("a server")).collect()
}

/// A plain SWRR simulation to compare against.
fn reference(weights: &[u32], n: usize) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    (0..n)
        .map(|_| {
            let mut best = 0;
            for (i, &w) in weights.iter().enumerate() {
                current[i] += i64::from(w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            best
        })
        .collect()
}

/// The longest run of `server` in `seq` read cyclically.
fn longest_cyclic_run(seq: &[usize], server: usize) -> usize {
    let doubled: Vec<usize> = seq.iter().chain(seq).copied().collect();
    let mut best = 0;
    let mut run = 0;
    for &s in &doubled {
        run = if s == server { run + 1 } else { 0 };
        best = best.max(run);
    }
    best.min(seq.len())
}

#[test]
fn weighted_5_1_1_is_interleaved() {
    let b = pool(Algorithm::Weighted, weighted(&[5, 1, 1]));
    let headers = http::HeaderMap::new();
    let seq: Vec<String> = (0..14).map(|_| pick_name(&b, &super::input(&headers))).collect();
    let expected = ["s0", "s0", "s1", "s0", "s2", "s0", "s0"];
    assert_eq!(seq[..7], expected);
    assert_eq!(seq[7..], expected);
}

#[test]
fn weighted_exact_counts_per_cycle() {
    for weights in [vec![3, 2, 7, 1], vec![5, 1, 1], vec![10, 10], vec![1]] {
        let total: u32 = weights.iter().sum();
        let b = pool(Algorithm::Weighted, weighted(&weights));
        for _cycle in 0..3 {
            let c = counts(&b, total as usize);
            for (i, &w) in weights.iter().enumerate() {
                assert_eq!(c.get(&format!("s{i}")).copied().unwrap_or(0), w as usize);
            }
        }
    }
}

#[test]
fn weighted_table_matches_reference_and_is_smooth() {
    let mut rng = TestRng(7);
    for _ in 0..200 {
        let n = 1 + (rng.next() % 6) as usize;
        let weights: Vec<u32> = (0..n).map(|_| 1 + (rng.next() % 20) as u32).collect();
        let w = Weighted::new(&weighted(&weights));
        assert!(matches!(w, Weighted::Table { .. }));
        let g = weights.iter().fold(0, |a, &b| gcd(a, b));
        let reduced: Vec<u32> = weights.iter().map(|&x| x / g).collect();
        let total: u32 = reduced.iter().sum();
        let seq = sequence(&w, total as usize);
        assert_eq!(seq, reference(&reduced, total as usize), "{weights:?}");
        // Smooth: a server never runs longer than its share of the gaps the
        // others leave, plus one where two cycles meet.
        for (i, &wi) in reduced.iter().enumerate() {
            let others = total - wi;
            if others == 0 {
                continue;
            }
            let bound = wi.div_ceil(others) as usize + 1;
            let run = longest_cyclic_run(&seq, i);
            assert!(run <= bound, "{weights:?}: s{i} runs {run} > {bound}");
        }
    }
}

#[test]
fn weighted_zero_counts_as_one() {
    let b = pool(Algorithm::Weighted, weighted(&[0, 2]));
    let c = counts(&b, 300);
    assert_eq!(c.get("s0"), Some(&100));
    assert_eq!(c.get("s1"), Some(&200));
}

#[test]
fn weighted_huge_sum_falls_back_to_running_state() {
    let weights = [10_000, 9_999, 7];
    assert!(weights.iter().map(|&w| u64::from(w)).sum::<u64>() > TABLE_CAP);
    let w = Weighted::new(&weighted(&weights));
    assert!(matches!(w, Weighted::Running(_)));
    let total = 20_006;
    let seq = sequence(&w, total);
    assert_eq!(seq, reference(&weights, total));
    for (i, &wi) in weights.iter().enumerate() {
        assert_eq!(seq.iter().filter(|&&s| s == i).count(), wi as usize);
    }
}

#[test]
fn swrr_of_empty_pool_does_not_panic() {
    assert_eq!(Swrr::new(&[]).step(|_| true), None);
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The running state (weights too large for a table) leaves a server that
/// is out of the step: the others share by their weights.
#[test]
fn running_state_shares_an_unavailable_server_s_turns_by_weight() {
    let mut s = Swrr::new(&[5, 3, 1]);
    let mut got = [0usize; 3];
    for _ in 0..4000 {
        got[s.step(|i| i != 0).expect("a server")] += 1;
    }
    assert_eq!(got, [0, 3000, 1000]);
}
