//! The audit report as text for people and JSON for tools.

use std::fmt::Write;

use super::{Report, Severity, CATALOG};

fn label(s: Severity) -> &'static str {
    match s {
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
    }
}

/// The report for a terminal.
pub fn text(r: &Report, source: &str) -> String {
    let mut o = String::new();
    let open: Vec<_> = r.findings.iter().filter(|f| f.acknowledged.is_none()).collect();
    let count = |s| open.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        o,
        "rampart audit of {source}: {} high, {} medium, {} low ({} acknowledged)",
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        r.findings.len() - open.len()
    );
    for f in &open {
        let title = CATALOG.iter().find(|(id, _)| *id == f.id).map_or("", |(_, t)| *t);
        let _ = writeln!(o, "\n{:<6} {}: {title} — {}", label(f.severity), f.id, f.subject);
        let _ = writeln!(o, "       {}", f.reason);
        let _ = writeln!(o, "       fix: {}", f.mitigation);
    }
    let acked: Vec<_> = r.findings.iter().filter(|f| f.acknowledged.is_some()).collect();
    if !acked.is_empty() {
        let _ = writeln!(o, "\nacknowledged:");
        for f in acked {
            let _ = writeln!(
                o,
                "  {:<6} {} — {}: {}",
                label(f.severity),
                f.id,
                f.subject,
                f.acknowledged.as_deref().unwrap_or("")
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o, "\nnotes:");
        for n in &r.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    o
}

/// The report as one JSON document.
pub fn json(r: &Report, source: &str) -> String {
    let open = |s| {
        r.findings
            .iter()
            .filter(|f| f.acknowledged.is_none() && f.severity == s)
            .count()
    };
    let doc = serde_json::json!({
        "config": source,
        "summary": {
            "high": open(Severity::High),
            "medium": open(Severity::Medium),
            "low": open(Severity::Low),
            "acknowledged": r.findings.iter().filter(|f| f.acknowledged.is_some()).count(),
        },
        "findings": r.findings,
        "notes": r.notes,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
