//! JUnit XML, as CI systems read test reports: escaping, and the `<testsuite>` and
//! `<testcase>` elements `portcullis test -o junit` and `portcullis audit -o junit` write.

use std::fmt::Write as _;

/// Escapes text for XML attributes and content (control characters XML 1.0 does not allow
/// are dropped).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// The XML declaration every report starts with.
pub const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Counts of a `<testsuites>` or `<testsuite>` element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Test cases.
    pub tests: usize,
    /// Failed cases.
    pub failures: usize,
    /// Cases in error.
    pub errors: usize,
    /// Skipped cases, written only when `Some`.
    pub skipped: Option<usize>,
}

impl Counts {
    fn attributes(&self) -> String {
        let mut out = format!(
            " tests=\"{}\" failures=\"{}\" errors=\"{}\"",
            self.tests, self.failures, self.errors
        );
        if let Some(s) = self.skipped {
            let _ = write!(out, " skipped=\"{s}\"");
        }
        out
    }
}

/// `<testsuites name="..." tests=... failures=... errors=...>` and a newline.
pub fn open_testsuites(out: &mut String, name: &str, counts: &Counts) {
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\"{}>",
        escape(name),
        counts.attributes()
    );
}

/// `  <testsuite name="..." [file="..."] tests=... failures=... errors=...>` and a newline.
pub fn open_testsuite(out: &mut String, name: &str, file: Option<&str>, counts: &Counts) {
    let _ = write!(out, "  <testsuite name=\"{}\"", escape(name));
    if let Some(f) = file {
        let _ = write!(out, " file=\"{}\"", escape(f));
    }
    let _ = writeln!(out, "{}>", counts.attributes());
}

/// How a test case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseResult<'a> {
    /// It passed.
    Passed,
    /// A `<failure>` with its message, type and text.
    Failed {
        /// The `message` attribute: one line.
        message: &'a str,
        /// The `type` attribute.
        kind: &'a str,
        /// The element's text.
        text: &'a str,
    },
    /// An `<error>` with its message, type and text.
    Error {
        /// The `message` attribute: one line.
        message: &'a str,
        /// The `type` attribute.
        kind: &'a str,
        /// The element's text.
        text: &'a str,
    },
    /// `<skipped message="..."/>`.
    Skipped {
        /// Why.
        message: &'a str,
    },
}

/// One `<testcase>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case<'a> {
    /// `name`.
    pub name: &'a str,
    /// `classname`.
    pub classname: &'a str,
    /// `file`, if any.
    pub file: Option<&'a str>,
    /// `line`, if any.
    pub line: Option<usize>,
    /// How it ended.
    pub result: CaseResult<'a>,
    /// `<system-out>` text, if any.
    pub system_out: Option<&'a str>,
}

/// Writes the case, indented for a suite, with a final newline.
pub fn write_case(out: &mut String, case: &Case<'_>) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\"",
        escape(case.name),
        escape(case.classname)
    );
    if let Some(f) = case.file {
        let _ = write!(out, " file=\"{}\"", escape(f));
    }
    if let Some(l) = case.line {
        let _ = write!(out, " line=\"{l}\"");
    }
    if case.result == CaseResult::Passed && case.system_out.is_none() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    match case.result {
        CaseResult::Passed => {}
        CaseResult::Failed {
            message,
            kind,
            text,
        } => {
            let _ = writeln!(
                out,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                escape(message),
                escape(kind),
                escape(text)
            );
        }
        CaseResult::Error {
            message,
            kind,
            text,
        } => {
            let _ = writeln!(
                out,
                "      <error message=\"{}\" type=\"{}\">{}</error>",
                escape(message),
                escape(kind),
                escape(text)
            );
        }
        CaseResult::Skipped { message } => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(message));
        }
    }
    if let Some(text) = case.system_out {
        let _ = writeln!(out, "      <system-out>{}</system-out>", escape(text));
    }
    out.push_str("    </testcase>\n");
}

/// `  </testsuite>` and a newline.
pub const CLOSE_TESTSUITE: &str = "  </testsuite>\n";
/// `</testsuites>` and a newline.
pub const CLOSE_TESTSUITES: &str = "</testsuites>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_drops_forbidden_control_characters() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\td"),
            "a&lt;b&gt;&amp;&quot;c&apos;\td"
        );
    }

    #[test]
    fn cases_are_written_in_each_shape() {
        let mut out = String::new();
        let case = Case {
            name: "n",
            classname: "c",
            file: Some("f.yaml"),
            line: Some(3),
            result: CaseResult::Passed,
            system_out: None,
        };
        write_case(&mut out, &case);
        write_case(
            &mut out,
            &Case {
                result: CaseResult::Failed {
                    message: "m",
                    kind: "T",
                    text: "x<y",
                },
                system_out: Some("w"),
                ..case
            },
        );
        write_case(
            &mut out,
            &Case {
                file: None,
                line: None,
                result: CaseResult::Skipped { message: "s" },
                ..case
            },
        );
        assert_eq!(
            out,
            "    <testcase name=\"n\" classname=\"c\" file=\"f.yaml\" line=\"3\"/>\n\
             \x20   <testcase name=\"n\" classname=\"c\" file=\"f.yaml\" line=\"3\">\n\
             \x20     <failure message=\"m\" type=\"T\">x&lt;y</failure>\n\
             \x20     <system-out>w</system-out>\n\
             \x20   </testcase>\n\
             \x20   <testcase name=\"n\" classname=\"c\">\n\
             \x20     <skipped message=\"s\"/>\n\
             \x20   </testcase>\n"
        );
    }
}
