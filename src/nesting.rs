//! Nesting depth of JSON: refuses deeply nested JSON before any parser sees it.
//!
//! The webhook's request body ([`check_json`], in `admission::parse_review`) and JSON
//! manifests (each value, `audit::read`) are checked here first. The check is a byte-level
//! scan, independent of the parser that runs next, so replacing the parser keeps the
//! protection; it costs about a byte-wide vector compare per byte for a typical webhook body
//! (BENCHMARKS.md), and refuses 100,000 levels in well under a millisecond. YAML has no scan:
//! its parser counts levels itself, with a budget ([`crate::yaml::parse`]).
//!
//! Why: parsers recurse (a stack overflow at some depth, unless they count); serde_json stops
//! at 128 levels, and so does this check, with a clear message and position. Real Kubernetes
//! objects nest a few dozen levels (CRD schemas are the deepest).

/// The most levels of nesting accepted (arrays and objects, sequences and mappings).
/// serde_json refuses deeper input itself; this check refuses it before it runs, in one pass,
/// whatever parser comes next; the YAML parser's budget ([`crate::yaml::parse`]) is the same.
pub const MAX_DEPTH: usize = 128;

/// Input nested deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "nested deeper than {max} levels (at line {line}, column {column}): refused before parsing",
    max = MAX_DEPTH
)]
pub struct TooDeep {
    /// 1-based line of the opening bracket (or indicator) past the limit.
    pub line: usize,
    /// 1-based column (bytes) of it.
    pub column: usize,
}

impl TooDeep {
    fn at(text: &[u8], offset: usize) -> TooDeep {
        let before = &text[..offset.min(text.len())];
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        TooDeep {
            line: before.iter().filter(|b| **b == b'\n').count() + 1,
            column: offset - line_start + 1,
        }
    }
}

/// Bytes that matter to the JSON scan outside strings.
const fn json_table() -> [bool; 256] {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'[' as usize] = true;
    t[b'{' as usize] = true;
    t[b']' as usize] = true;
    t[b'}' as usize] = true;
    t
}
static JSON_SPECIAL: [bool; 256] = json_table();

/// Refuses JSON nested deeper than [`MAX_DEPTH`].
///
/// Parser-independent on purpose: the webhook calls it on every request body before parsing
/// (`admission::parse_review`), so whichever JSON parser reads the body next never sees deep
/// input; keep the call in front of the parse if the parser changes. Cheap: a body with at
/// most [`MAX_DEPTH`] opening brackets in all (strings included) cannot be deeper, which a
/// vectorised count finds in under a microsecond for a typical review (about 2,400
/// instructions for the captured 3.1 KB Deployment review, against 243,000 for its parse,
/// BENCHMARKS.md); only other bodies get the exact scan ([`json_depth`], about 8
/// instructions a byte).
pub fn check_json(bytes: &[u8]) -> Result<(), TooDeep> {
    // `b | 0x20` folds `[` (0x5B) onto `{` (0x7B), and nothing else onto it: one compare a
    // byte, counted in byte-wide lanes the compiler vectorises (255 at most per lane).
    let mut openers = 0usize;
    for chunk in bytes.chunks(255) {
        let mut in_chunk = 0u8;
        for b in chunk {
            in_chunk += u8::from(*b | 0x20 == b'{');
        }
        openers += usize::from(in_chunk);
    }
    if openers <= MAX_DEPTH {
        return Ok(());
    }
    json_depth(bytes).map(|_| ())
}

/// The nesting depth of JSON text: the most arrays and objects open at once. Exact for valid
/// JSON; for anything else a number that any JSON parser would have to reach before failing.
/// Stops counting (and returns `Err`) at the first level past [`MAX_DEPTH`]. Skips string
/// contents with `memchr`.
pub fn json_depth(bytes: &[u8]) -> Result<usize, TooDeep> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !JSON_SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                // Skip the string: to the next unescaped quote. A byte loop: most strings are
                // a few bytes long, where a memchr call costs more than it saves.
                i += 1;
                loop {
                    // An escape as the last byte steps past the end: the string is unclosed.
                    let rest = bytes.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(n) if bytes[i + n] == b'\\' => i += n + 2,
                        Some(n) => {
                            i += n;
                            break;
                        }
                        None => return Ok(deepest),
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(TooDeep::at(bytes, i));
                }
                deepest = deepest.max(depth);
            }
            _ => depth = depth.saturating_sub(1),
        }
        i += 1;
    }
    Ok(deepest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn json_depth_is_exact_and_strings_do_not_count() {
        assert_eq!(json_depth(b""), Ok(0));
        assert_eq!(json_depth(b"42"), Ok(0));
        assert_eq!(json_depth(br#"{"a": [1, {"b": []}]}"#), Ok(4));
        assert_eq!(json_depth(br#"{"a": "[[[{{{", "b\"[": ["]]]"]}"#), Ok(2));
        assert_eq!(json_depth(br#"["\\", ["\\\"["]]"#), Ok(2));
        // An unclosed string ending in a backslash (found by the fuzz smoke run: it sliced
        // past the end).
        assert_eq!(json_depth(br#"{"a": ["\"#), Ok(2));
        assert_eq!(json_depth(b"\"\\"), Ok(0));
        assert_eq!(check_json(br#"{"a": ["\"#), Ok(()));
        assert_eq!(
            json_depth(nested("[", "]", MAX_DEPTH).as_bytes()),
            Ok(MAX_DEPTH)
        );
        let err = json_depth(nested("[", "]", MAX_DEPTH + 1).as_bytes()).expect_err("deep");
        assert_eq!((err.line, err.column), (1, MAX_DEPTH + 1));
        let text = format!("{{\"a\":\n  {}", "{\"b\":".repeat(200));
        let err = json_depth(text.as_bytes()).expect_err("deep");
        assert_eq!(err.line, 2);
        assert_eq!(
            err.to_string(),
            format!(
                "nested deeper than 128 levels (at line 2, column {}): refused before parsing",
                err.column
            )
        );
    }

    #[test]
    fn the_quick_count_and_the_scan_agree() {
        let shallow = br#"{"a": ["[[[[", {"b": "{{{{"}]}"#;
        assert_eq!(check_json(shallow), Ok(()));
        // Many brackets in strings: the count cannot tell, the scan can.
        let text = format!("{{\"a\": \"{}\"}}", "[".repeat(10 * MAX_DEPTH));
        assert_eq!(check_json(text.as_bytes()), Ok(()));
        let deep = nested("[", "]", MAX_DEPTH + 1);
        assert_eq!(
            check_json(deep.as_bytes()),
            json_depth(deep.as_bytes()).map(|_| ())
        );
        assert!(check_json(deep.as_bytes()).is_err());
        assert_eq!(
            check_json(nested("{\"a\":", "}", MAX_DEPTH).as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn a_million_levels_are_refused_at_the_limit() {
        for text in [nested("[", "]", 1_000_000), "{\"a\":".repeat(1_000_000)] {
            let err = json_depth(text.as_bytes()).expect_err("deep");
            assert_eq!(err.line, 1);
        }
    }

    pub(crate) fn json_value_depth(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(json_value_depth).max().unwrap_or(0),
            serde_json::Value::Object(m) => 1 + m.values().map(json_value_depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Strings made of what the scanners look at: brackets, quotes, escapes, indicators,
    /// comments, newlines.
    pub(crate) fn tricky_string() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex(r#"[\[\]{}"'\\#:?|>&!*, \n-]{0,12}|[a-z]{1,4}"#)
            .expect("regex")
    }

    pub(crate) fn value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            tricky_string().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(12, 96, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::from),
                proptest::collection::vec((tricky_string(), inner), 0..5)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// `value()` inside 100 to 140 more arrays and objects: around the limit.
    pub(crate) fn wrapped() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        (value(), 100..140usize, any::<u64>()).prop_map(|(mut v, levels, kinds)| {
            for i in 0..levels {
                v = if kinds >> (i % 64) & 1 == 1 {
                    serde_json::Value::Array(vec![v])
                } else {
                    serde_json::Value::Object([("k".to_owned(), v)].into_iter().collect())
                };
            }
            v
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The scan finds the depth counted on the value itself, and the check refuses exactly
        /// what is deeper than the limit.
        #[test]
        fn the_scan_is_exact_and_refuses_only_what_is_too_deep(v in wrapped()) {
            let depth = json_value_depth(&v);
            let json = serde_json::to_string_pretty(&v).expect("json");
            let scanned = json_depth(json.as_bytes()).ok();
            proptest::prop_assert_eq!(scanned, (depth <= MAX_DEPTH).then_some(depth));
            proptest::prop_assert_eq!(check_json(json.as_bytes()).is_ok(), depth <= MAX_DEPTH);
        }

        #[test]
        fn the_scan_is_exact_on_shallow_values(v in value()) {
            let json = serde_json::to_string(&v).expect("json");
            proptest::prop_assert_eq!(json_depth(json.as_bytes()), Ok(json_value_depth(&v)));
        }
    }
}
