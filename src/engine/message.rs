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
        let mut s = String::with_capacity(self.summary_len());
        self.push_summary(&mut s);
        s
    }

    /// The length of [`Finding::summary`].
    fn summary_len(&self) -> usize {
        self.policy.len()
            + 3
            + self.container.as_ref().map_or(0, |c| c.len() + 14)
            + self.message.len()
            + if self.field.is_empty() {
                0
            } else {
                self.field.len() + 3
            }
    }

    /// Appends [`Finding::summary`] to `out`.
    fn push_summary(&self, out: &mut String) {
        out.push('[');
        out.push_str(&self.policy);
        out.push_str("] ");
        if let Some(c) = &self.container {
            out.push_str("container \"");
            out.push_str(c);
            out.push_str("\": ");
        }
        out.push_str(&self.message);
        if !self.field.is_empty() {
            out.push_str(" (");
            out.push_str(&self.field);
            out.push(')');
        }
    }

    /// Appends [`Finding::full_text`] to `out`.
    fn push_full_text(&self, out: &mut String) {
        self.push_summary(out);
        if !self.hint.is_empty() {
            out.push_str("; fix: ");
            out.push_str(&self.hint);
        }
    }

    /// What a warning (and a policy report) says before the workload and the finding: the
    /// exception that excepts it, `pre-existing, not blocking: ` on UPDATE, and what the
    /// finding does (`would apply: `, `denied from 2027-01-15: `, ...).
    pub fn warning_prefix(&self) -> String {
        let mut prefix = String::new();
        self.push_warning_prefix(&mut prefix);
        prefix
    }

    /// Appends [`Finding::warning_prefix`] to `prefix`.
    fn push_warning_prefix(&self, prefix: &mut String) {
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
            (FindingKind::Violation, _, Some(t)) => {
                prefix.push_str("denied from ");
                prefix.push_str(&t.to_string());
                prefix.push_str(": ");
            }
            (FindingKind::Mutation, _, None) => prefix.push_str("would apply: "),
            (FindingKind::Mutation, _, Some(t)) => {
                prefix.push_str("applied from ");
                prefix.push_str(&t.to_string());
                prefix.push_str(": ");
            }
        }
    }

    /// The summary followed by the fix hint.
    pub fn full_text(&self) -> String {
        let hint = if self.hint.is_empty() {
            0
        } else {
            self.hint.len() + 7
        };
        let mut s = String::with_capacity(self.summary_len() + hint);
        self.push_full_text(&mut s);
        s
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
        use std::fmt::Write as _;
        let denying = || {
            self.findings
                .iter()
                .filter(|f| f.kind == FindingKind::Violation && f.effect == Effect::Deny)
        };
        let count = denying().count();
        if count == 0 {
            return None;
        }
        let mut msg = String::with_capacity(
            64 + self.workload.len()
                + denying()
                    .map(|f| f.summary_len() + f.hint.len() + 16)
                    .sum::<usize>(),
        );
        msg.push_str("Portcullis denied ");
        msg.push_str(&self.workload);
        // Writing to a String cannot fail.
        let _ = write!(msg, ": {count} violation");
        if count != 1 {
            msg.push('s');
        }
        for (i, f) in denying().enumerate() {
            let _ = write!(msg, "\n{}. ", i + 1);
            f.push_full_text(&mut msg);
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
            let mut text = String::with_capacity(MAX_WARNING_LEN);
            f.push_warning_prefix(&mut text);
            text.push_str(&self.workload);
            text.push_str(": ");
            let start = text.len();
            f.push_full_text(&mut text);
            if text.len() <= MAX_WARNING_LEN {
                text
            } else {
                // The fix hint goes first when the whole text does not fit.
                text.truncate(start);
                f.push_summary(&mut text);
                truncate(&text, MAX_WARNING_LEN)
            }
        });
        let texts: Vec<String> = pending.into_iter().chain(findings).collect();
        // Room for the final "N more" line.
        const RESERVE: usize = 64;
        let count = texts.len();
        let mut out = Vec::with_capacity(count);
        let mut total = 0;
        for (i, t) in texts.into_iter().enumerate() {
            if total + t.len() > MAX_WARNINGS_TOTAL - RESERVE {
                out.push(format!(
                    "... and {} more Portcullis warnings (see `portcullis audit` or the webhook logs)",
                    count - i
                ));
                break;
            }
            total += t.len();
            out.push(t);
        }
        out
    }
}
