//! Messages: one text per finding, the denial message listing every violation, and warnings
//! within the apiserver's limits. The same text is used by the webhook, the CLI and reports.

use super::decision::{Decision, Effect, Finding, FindingKind};

/// The apiserver truncates longer warnings; we never send one longer than this (bytes).
pub const MAX_WARNING_LEN: usize = 256;
/// The apiserver drops warnings past this total (bytes); we stay below it.
pub const MAX_WARNINGS_TOTAL: usize = 4096;

impl Finding {
    /// `[require-probes] container "nginx": no livenessProbe (spec.template.spec.containers[0].livenessProbe)`.
    pub fn summary(&self) -> String {
        let mut s = format!("[{}] ", self.policy);
        if let Some(c) = &self.container {
            s.push_str(&format!("container \"{c}\": "));
        }
        s.push_str(&self.message);
        if !self.field.is_empty() {
            s.push_str(&format!(" ({})", self.field));
        }
        s
    }

    /// What a warning (and a policy report) says before the workload and the finding: the
    /// exception that excepts it, `pre-existing, not blocking: ` on UPDATE, and what the
    /// finding does (`would apply: `, `denied from 2027-01-15: `, ...).
    pub fn warning_prefix(&self) -> String {
        let mut prefix = String::new();
        if let Some(e) = &self.exception {
            prefix.push_str("excepted by ");
            prefix.push_str(&e.name);
            prefix.push_str(" (owner ");
            prefix.push_str(&e.owner);
            prefix.push_str(", expires ");
            prefix.push_str(&e.expires.to_string());
            if let Some(t) = &e.ticket {
                prefix.push_str(", ");
                prefix.push_str(t);
            }
            prefix.push_str("): ");
        }
        if self.pre_existing {
            prefix.push_str("pre-existing, not blocking: ");
        }
        match (self.kind, self.effect, self.enforced_from) {
            (FindingKind::Violation, Effect::Excepted, _)
            | (FindingKind::Violation, _, None)
            | (FindingKind::Notice, _, _) => {}
            (FindingKind::Mutation, Effect::Excepted, _) => prefix.push_str("not applied: "),
            (FindingKind::Violation, _, Some(t)) => prefix.push_str(&format!("denied from {t}: ")),
            (FindingKind::Mutation, _, None) => prefix.push_str("would apply: "),
            (FindingKind::Mutation, _, Some(t)) => prefix.push_str(&format!("applied from {t}: ")),
        }
        prefix
    }

    /// The summary followed by the fix hint.
    pub fn full_text(&self) -> String {
        if self.hint.is_empty() {
            self.summary()
        } else {
            format!("{}; fix: {}", self.summary(), self.hint)
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut with `...`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl Decision {
    /// The message a denied request carries: every denying violation, numbered, with its fix.
    pub fn denial_message(&self) -> Option<String> {
        let denying: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny)
            .collect();
        if denying.is_empty() {
            return None;
        }
        let mut msg = format!(
            "Portcullis denied {}: {} violation{}",
            self.workload,
            denying.len(),
            if denying.len() == 1 { "" } else { "s" }
        );
        for (i, f) in denying.iter().enumerate() {
            msg.push_str(&format!("\n{}. {}", i + 1, f.full_text()));
        }
        Some(msg)
    }

    /// Warnings for the API client: warn-mode violations, pre-existing violations on UPDATE,
    /// warn-mode mutations and notices. Each is at most [`MAX_WARNING_LEN`] bytes and all together at most
    /// [`MAX_WARNINGS_TOTAL`]; what does not fit is counted in a last warning.
    pub fn warnings(&self) -> Vec<String> {
        // Warn-mode findings first, excepted ones after them: when the apiserver's limits cut
        // the list, what the user must fix survives.
        let warn = self.findings.iter().filter(|f| f.effect == Effect::Warn);
        let excepted = self
            .findings
            .iter()
            .filter(|f| f.effect == Effect::Excepted && f.is_warning());
        let pending = (!self.labels_pending.is_empty()).then(|| {
            truncate(
                &format!(
                    "{}: the labels of its namespace are not known to Portcullis yet (a new \
                     namespace), so the policies whose verdict depends on them only warn: {}",
                    self.workload,
                    self.labels_pending.join(", ")
                ),
                MAX_WARNING_LEN,
            )
        });
        let findings = warn.chain(excepted).map(|f| {
            let prefix = f.warning_prefix();
            // The fix hint goes first when the whole text does not fit.
            let full = format!("{prefix}{}: {}", self.workload, f.full_text());
            if full.len() <= MAX_WARNING_LEN {
                full
            } else {
                truncate(
                    &format!("{prefix}{}: {}", self.workload, f.summary()),
                    MAX_WARNING_LEN,
                )
            }
        });
        let texts: Vec<String> = pending.into_iter().chain(findings).collect();
        // Room for the final "N more" line.
        const RESERVE: usize = 64;
        let mut out = Vec::new();
        let mut total = 0;
        for (i, t) in texts.iter().enumerate() {
            if total + t.len() > MAX_WARNINGS_TOTAL - RESERVE {
                out.push(format!(
                    "... and {} more Portcullis warnings (see `portcullis audit` or the webhook logs)",
                    texts.len() - i
                ));
                break;
            }
            total += t.len();
            out.push(t.clone());
        }
        out
    }
}
