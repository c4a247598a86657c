//! Kubernetes name syntax: DNS-1123 labels and subdomains, qualified names (label and
//! annotation keys), label values, name patterns and image tags, each check saying what is wrong.

/// Whether `c` is an ASCII letter or digit (what Kubernetes names start and end with).
pub(crate) fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Checks a DNS-1123 label (`require-probes`): at most 63 lowercase alphanumerics or `-`,
/// starting and ending with an alphanumeric.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 63 {
        return Err(format!(
            "is {} characters long, at most 63 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("may contain only lowercase letters, digits and '-'".to_owned());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (`example.com`): at most 253 characters, dot-separated
/// lowercase alphanumerics and `-`, starting and ending with an alphanumeric.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 253 {
        return Err(format!(
            "is {} characters long, at most 253 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        return Err("may contain only lowercase letters, digits, '-' and '.'".to_owned());
    }
    if !s.starts_with(is_alnum) || !s.ends_with(is_alnum) {
        return Err("must start and end with a letter or digit".to_owned());
    }
    if s.split('.')
        .any(|part| part.is_empty() || part.starts_with('-') || part.ends_with('-'))
    {
        return Err("each dot-separated part must start and end with a letter or digit".to_owned());
    }
    Ok(())
}

fn check_name_part(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if s.len() > 63 {
        return Err(format!(
            "{what} is {} characters long, at most 63 are allowed",
            s.len()
        ));
    }
    if !s
        .chars()
        .all(|c| is_alnum(c) || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "{what} may contain only letters, digits, '-', '_' and '.'"
        ));
    }
    if !s.starts_with(is_alnum) || !s.ends_with(is_alnum) {
        return Err(format!("{what} must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks a qualified name, the syntax of label and annotation keys: `name` or
/// `prefix/name`, where the prefix is a DNS-1123 subdomain and the name at most 63 letters,
/// digits, `-`, `_` or `.`, starting and ending with a letter or digit.
pub fn check_qualified_name(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        None => check_name_part(s, "the name"),
        Some((prefix, name)) => {
            check_dns1123_subdomain(prefix).map_err(|e| format!("the prefix {prefix:?} {e}"))?;
            check_name_part(name, "the name after '/'")
        }
    }
}

/// Whether `v` is a valid Kubernetes label value (empty, or ≤ 63 characters of
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
pub fn is_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let b = v.as_bytes();
    v.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Checks a label value: empty, or at most 63 letters, digits, `-`, `_` or `.`, starting and
/// ending with a letter or digit.
pub fn check_label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    check_name_part(s, "a label value")
}

/// Checks a namespace or workload name pattern (`team-*`): a name where `*` matches any run
/// of characters. `subdomain` allows dots (workload names), otherwise a DNS-1123 label.
pub(crate) fn check_name_pattern(s: &str, subdomain: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("an empty pattern matches nothing".to_owned());
    }
    let max = if subdomain { 253 } else { 63 };
    if s.len() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if let Some(c) = s.chars().find(|&c| {
        !(c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || c == '*'
            || (subdomain && c == '.'))
    }) {
        return Err(format!(
            "contains {c:?}: names are lowercase letters, digits, '-'{} and the wildcard '*'",
            if subdomain { ", '.'" } else { "" }
        ));
    }
    Ok(())
}

/// Checks an image tag (`1.27.3`): at most 128 letters, digits, `_`, `.` or `-`, not starting
/// with `.` or `-`.
pub(crate) fn check_image_tag(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.len() > 128 {
        return Err("is longer than 128 characters".to_owned());
    }
    if !s
        .chars()
        .all(|c| is_alnum(c) || c == '_' || c == '.' || c == '-')
    {
        return Err("may contain only letters, digits, '_', '.' and '-' (write the tag without the image name and ':')".to_owned());
    }
    if s.starts_with('.') || s.starts_with('-') {
        return Err("must not start with '.' or '-'".to_owned());
    }
    Ok(())
}

/// How label (and annotation) keys are written, for hints.
pub(crate) const LABEL_KEY_HINT: &str = "label keys are `name` or `prefix/name`: the prefix a DNS subdomain (example.com), the name at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
/// How label values are written, for hints.
pub(crate) const LABEL_VALUE_HINT: &str = "label values are empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
/// How namespace names and patterns are written, for hints.
pub(crate) const NAMESPACE_PATTERN_HINT: &str =
    "write namespace names such as `team-a`, or patterns such as `team-*`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        for ok in ["", "a", "web-1", "a.b_c", &"x".repeat(63)] {
            assert!(is_label_value(ok), "{ok}");
            assert_eq!(check_label_value(ok), Ok(()), "{ok}");
        }
        for bad in ["-a", "a-", "a/b", "a b", &"x".repeat(64), "é"] {
            assert!(!is_label_value(bad), "{bad}");
            assert!(check_label_value(bad).is_err(), "{bad}");
        }
    }
}
