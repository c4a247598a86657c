//! CEL source text read without parsing it: where its string literals are. The one scanner
//! behind the checks made before parsing (`compile/cel.rs`: nesting, `!!`), the export's
//! renaming of identifiers (`native/cel_rules.rs`) and the tests that rewrite expressions.

/// Where the string literal whose opening quote is at `start` of `text` ends (the index after
/// its closing quote), as CEL reads it: `'...'` or `"..."`, triple-quoted (`'''...'''`),
/// raw when its prefix (`r`, `rb`, `br`, any case) has an `r` (no escapes then); `None` when
/// it is not closed. `text` is bytes or chars: quotes, backslashes and prefixes are ASCII, so
/// byte offsets never fall inside a multi-byte character.
pub fn literal_end<T: Copy + Into<u32>>(text: &[T], start: usize) -> Option<usize> {
    let at = |i: usize| text.get(i).map(|&c| c.into());
    let quote = at(start)?;
    let ascii = |c: u8| u32::from(c);
    // The prefix: up to two of r, R, b, B right before the quote, not ending an identifier.
    let prefix_letter = |c: u32| [b'r', b'R', b'b', b'B'].map(ascii).contains(&c);
    let mut p = start;
    while p > 0 && start - p < 2 && at(p - 1).is_some_and(prefix_letter) {
        p -= 1;
    }
    let word_before = p > 0
        && at(p - 1).is_some_and(|c| {
            char::from_u32(c).is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    let raw = !word_before
        && (p..start).any(|i| at(i).is_some_and(|c| c == ascii(b'r') || c == ascii(b'R')));
    let triple = at(start + 1) == Some(quote) && at(start + 2) == Some(quote);
    let width = if triple { 3 } else { 1 };
    let mut i = start + width;
    while let Some(c) = at(i) {
        if c == ascii(b'\\') && !raw {
            i += 2;
        } else if c == quote && (!triple || at(i + 1) == Some(quote) && at(i + 2) == Some(quote)) {
            return Some(i + width);
        } else {
            i += 1;
        }
    }
    None
}

/// Whether `c` opens a string literal.
pub fn is_quote<T: Copy + Into<u32>>(c: T) -> bool {
    let c = c.into();
    c == u32::from(b'\'') || c == u32::from(b'"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(text: &str, start: usize) -> Option<usize> {
        let by_bytes = literal_end(text.as_bytes(), start);
        let chars: Vec<char> = text.chars().collect();
        // The same answer on chars, where the text is ASCII before the literal.
        if text.is_ascii() {
            assert_eq!(literal_end(&chars, start), by_bytes, "{text}");
        }
        by_bytes
    }

    #[test]
    fn literals_end_where_cel_ends_them() {
        assert_eq!(end("'a' + x", 0), Some(3));
        assert_eq!(end(r#"x == "a\"b" "#, 5), Some(11));
        assert_eq!(end(r"'a\'b'", 0), Some(6));
        assert_eq!(end("'''a'b''' + 1", 0), Some(9));
        // Raw: a backslash is a character; `rb` and `BR` are raw too, `b` is not.
        assert_eq!(end(r"r'a\' + 1", 1), Some(5));
        assert_eq!(end(r"rb'a\' + 1", 2), Some(6));
        assert_eq!(end(r"BR'a\' + 1", 2), Some(6));
        assert_eq!(end(r"b'a\'' + 1", 1), Some(6));
        // `xr` is an identifier, not a prefix.
        assert_eq!(end(r"xr'a\'' ", 2), Some(7));
        assert_eq!(end("'open", 0), None);
        assert_eq!(end("'héllo' + x", 0), Some("'héllo'".len()));
    }
}
