//! `rampart audit`: the configuration reviewed the way an experienced
//! infrastructure engineer would, against the weak points of a typical
//! design (one balancer, one database writer, plaintext behind the
//! balancer, every tier on one host...), the TLS material, the request
//! rules and the host firewalls' applied state.
//!
//! Owns the catalog of findings (each with a stable identifier that
//! `[[audit.ack]]` can name), the checks, and their report. Exposes
//! [`audit`], which returns a [`Report`]; `report.rs` prints it as text or
//! JSON. Nothing here changes anything.

mod checks;
mod fleet;
mod hostfw;
mod report;
mod rules;
mod tls;

#[cfg(test)]
mod tests;

use crate::config::model::Model;

pub use fleet::{FleetFacts, FleetNode};
pub use report::{json, text};

/// How bad a finding is. `High` fails `rampart audit` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// Every finding `rampart audit` can report: its identifier and what it
/// is about (kept with the config, which checks `[[audit.ack]]` ids).
pub use crate::config::model::FINDINGS as CATALOG;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    /// What it is about: a host, pool, listener, rule, certificate...
    pub subject: String,
    pub reason: String,
    pub mitigation: String,
    /// Why it was accepted, when an `[[audit.ack]]` names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<String>,
}

impl Finding {
    fn new(
        id: &'static str,
        severity: Severity,
        subject: impl Into<String>,
        reason: impl Into<String>,
        mitigation: impl Into<String>,
    ) -> Finding {
        debug_assert!(
            CATALOG.iter().any(|(c, _)| *c == id),
            "{id} is not in the catalog"
        );
        Finding {
            id,
            severity,
            subject: subject.into(),
            reason: reason.into(),
            mitigation: mitigation.into(),
            acknowledged: None,
        }
    }
}

/// Which host this machine is, for the checks of the live firewall.
#[derive(Debug, Clone, Default)]
pub struct Local {
    /// `--host NAME`; None: the host whose address is assigned here, if any.
    pub host: Option<String>,
    /// Read the kernel's ruleset (needs root).
    pub live: bool,
    /// With `[fleet]`: what its etcd says, or why it could not be read.
    pub fleet: Option<Result<FleetFacts, String>>,
}

/// What `rampart audit` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Findings, worst first; acknowledged ones carry their reason.
    pub findings: Vec<Finding>,
    /// What was checked, or could not be, besides the findings.
    pub notes: Vec<String>,
}

impl Report {
    /// The worst severity among findings nobody acknowledged.
    pub fn worst(&self) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| f.acknowledged.is_none())
            .map(|f| f.severity)
            .max()
    }
}

/// Reviews `m`. `now` is Unix seconds (certificate expiry).
pub fn audit(m: &Model, local: &Local, now: i64) -> Report {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    match &m.topology {
        Some(t) => {
            checks::topology(m, t, &mut out);
            hostfw::check(m, t, local, &mut out, &mut notes);
        }
        None => notes.push(
            "no [topology]: the hosts of the infrastructure are not described, so only this instance's settings were reviewed"
                .into(),
        ),
    }
    checks::instance(m, &mut out);
    tls::check(m, now, &mut out, &mut notes);
    rules::check(m, &mut out);
    match &local.fleet {
        Some(Ok(f)) => fleet::check(f, &mut out),
        Some(Err(e)) => notes.push(format!(
            "the fleet's etcd could not be read ({e}): its nodes and members were not reviewed"
        )),
        None => {}
    }
    for ack in &m.audit.acks {
        let mut used = false;
        for f in out
            .iter_mut()
            .filter(|f| f.id == ack.id && ack.subject.as_ref().is_none_or(|s| *s == f.subject))
        {
            f.acknowledged = Some(ack.reason.clone());
            used = true;
        }
        if !used {
            notes.push(format!(
                "[[audit.ack]] id = \"{}\"{} matches no finding: remove it",
                ack.id,
                ack.subject
                    .as_ref()
                    .map_or(String::new(), |s| format!(", subject = \"{s}\""))
            ));
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.id.cmp(b.id))
            .then(a.subject.cmp(&b.subject))
    });
    Report { findings: out, notes }
}
