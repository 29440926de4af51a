//! Parsing an inline link `[text](destination "title")`, with balanced parentheses in the URL.

use super::inline::find_code_span_end;
use std::ops::Range;

/// A parsed inline link.
pub(super) struct Link {
    /// Byte range of the link text, without the brackets.
    pub label: Range<usize>,
    /// The URL with Markdown escapes removed.
    pub destination: String,
    /// Byte offset just past the closing `)`.
    pub end: usize,
}

/// Parses the inline link whose `[` is at byte `open` of `src`.
pub(super) fn parse(src: &str, open: usize) -> Option<Link> {
    let bytes = src.as_bytes();
    if bytes.get(open) != Some(&b'[') {
        return None;
    }
    let close = label_end(src, open + 1)?;
    let mut k = close + 1;
    if bytes.get(k) != Some(&b'(') {
        return None;
    }
    k = skip_spaces(bytes, k + 1);
    let (destination, after) = destination(src, k)?;
    k = skip_spaces(bytes, after);
    if let Some(quote @ (b'"' | b'\'' | b'(')) = bytes.get(k).copied() {
        let closing = if quote == b'(' { b')' } else { quote };
        let len = bytes[k + 1..].iter().position(|b| *b == closing)?;
        k = skip_spaces(bytes, k + 1 + len + 1);
    }
    if bytes.get(k) != Some(&b')') {
        return None;
    }
    Some(Link {
        label: open + 1..close,
        destination: unescape(destination),
        end: k + 1,
    })
}

/// The byte offset of the `]` closing a link text that starts at `from`; brackets nest, and
/// brackets inside code spans or escaped do not count.
fn label_end(src: &str, from: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut j = from;
    loop {
        match *bytes.get(j)? {
            b'\\' => j += 2,
            b'`' => {
                let ticks = bytes[j..].iter().take_while(|b| **b == b'`').count();
                j = find_code_span_end(src, j, ticks).map_or(j + ticks, |(_, end)| end + ticks);
            }
            b'[' => {
                depth += 1;
                j += 1;
            }
            b']' if depth == 0 => return Some(j),
            b']' => {
                depth -= 1;
                j += 1;
            }
            _ => j += 1,
        }
    }
}

/// The destination starting at `k` (`<...>` or a run without spaces and with balanced
/// parentheses) and the offset after it.
fn destination(src: &str, k: usize) -> Option<(&str, usize)> {
    let bytes = src.as_bytes();
    if bytes.get(k) == Some(&b'<') {
        let len = src[k + 1..].find(['>', '<', '\n'])?;
        let end = k + 1 + len;
        return (bytes[end] == b'>').then(|| (&src[k + 1..end], end + 1));
    }
    let mut parens = 0usize;
    let mut j = k;
    loop {
        match *bytes.get(j)? {
            b'\\' => j += 2,
            b'(' => {
                parens += 1;
                j += 1;
            }
            b')' if parens == 0 => break,
            b')' => {
                parens -= 1;
                j += 1;
            }
            b if b.is_ascii_whitespace() => break,
            b if b.is_ascii_control() => return None,
            _ => j += 1,
        }
    }
    Some((&src[k..j], j))
}

fn skip_spaces(bytes: &[u8], mut k: usize) -> usize {
    while matches!(bytes.get(k), Some(b' ' | b'\t' | b'\n')) {
        k += 1;
    }
    k
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(next) if c == '\\' && next.is_ascii_punctuation() => {}
            _ => out.push(c),
        }
    }
    out
}

/// Whether a link's text names its own destination (`[example.com](https://example.com/)`,
/// `[ana@example.com](mailto:ana@example.com)`), so the URL alone says it all.
pub(super) fn same_target(label: &str, url: &str) -> bool {
    fn normalize(s: &str) -> String {
        let mut s = s.trim().to_lowercase();
        for prefix in ["mailto:", "https://", "http://", "www."] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.to_owned();
            }
        }
        s.trim_end_matches('/').to_owned()
    }
    normalize(label) == normalize(url)
}
