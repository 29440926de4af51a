//! Splitting a long reply into WhatsApp messages of at most [`WHATSAPP_TEXT_LIMIT`] characters.
//!
//! Each part is as long as it can be, cut at the best boundary that fits: a blank line, else a
//! line break, else the end of a sentence, else a space; a word longer than a whole message is cut
//! between grapheme clusters (so an emoji with modifiers stays whole). Code fences are kept whole
//! when they fit in a message; a fence that alone is too long is closed at the end of a part and
//! reopened at the start of the next, and those markers count toward the limit.

use super::format::fence::Fence;
use unicode_segmentation::UnicodeSegmentation;

/// The most characters WhatsApp accepts in one text message body.
pub const WHATSAPP_TEXT_LIMIT: usize = 4096;

/// Splits `text` into parts of at most `limit` characters (Unicode scalar values), in order.
///
/// Text within the limit comes back as one part, unchanged; empty or blank text gives no parts.
/// Parts are never empty and are trimmed of the whitespace at the points where they were cut.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    if text.trim().is_empty() {
        return Vec::new();
    }
    if fits(text, limit) {
        return vec![text.to_owned()];
    }
    let mut parts = Vec::new();
    let mut rest = trim_leading_blank_lines(text.trim_end()).to_owned();
    while !fits(&rest, limit) {
        let cut = next_cut(&rest, limit);
        // A limit smaller than the indentation that starts `rest` cuts off only whitespace
        // (`" A"` at limit 1, found by the property tests): drop it, never send a blank part.
        if !cut.part.is_empty() {
            parts.push(cut.part);
        }
        rest = cut.rest;
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

/// A cut point: the part keeps `rest[..start]`, the next part begins at `rest[end..]`, and the
/// whitespace between is the separator that is dropped.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// The latest cut of each kind found in the window.
#[derive(Debug, Default)]
struct Candidates {
    paragraph: Option<Span>,
    line: Option<Span>,
    sentence: Option<Span>,
    word: Option<Span>,
    /// Inside the fence that opens the text, within the budget left once the fence is closed.
    code_line: Option<Span>,
    code_word: Option<Span>,
}

struct Cut {
    part: String,
    rest: String,
}

/// Cuts the first part off `rest`, which is longer than `limit`, starts with a non-blank line and
/// ends with a non-whitespace char.
fn next_cut(rest: &str, limit: usize) -> Cut {
    let window_end = byte_offset_of_char(rest, limit);
    let first_line = rest.split('\n').next().unwrap_or_default();
    let leading_fence = Fence::open(first_line);
    // Inside a fence that must be split, the part also needs room for "\n```".
    let fence_window_end = leading_fence
        .as_ref()
        .and_then(|f| limit.checked_sub(1 + f.len))
        .map(|chars| byte_offset_of_char(rest, chars));
    let found = scan(rest, window_end, fence_window_end);

    let outside = found
        .paragraph
        .or(found.line)
        .or(found.sentence)
        .or(found.word);
    if let Some(span) = outside {
        return plain_cut(rest, span);
    }
    if let (Some(fence), Some(budget)) = (&leading_fence, fence_window_end) {
        let content_start = first_line.len();
        let inside = found.code_line.or(found.code_word).or_else(|| {
            grapheme_cut(rest, content_start + 1, budget).map(|at| Span { start: at, end: at })
        });
        if let Some(span) = inside {
            return Cut {
                part: format!("{}\n{}", rest[..span.start].trim_end(), fence.closer()),
                rest: format!("{}\n{}", first_line.trim_end(), &rest[span.end..]),
            };
        }
    }
    // A single word longer than the limit (or a limit too small for fences): cut between
    // grapheme clusters, or between chars when even one cluster is too long.
    let at = grapheme_cut(rest, 0, window_end).unwrap_or(window_end);
    plain_cut(rest, Span { start: at, end: at })
}

fn plain_cut(rest: &str, span: Span) -> Cut {
    Cut {
        part: rest[..span.start].trim_end().to_owned(),
        rest: trim_leading_blank_lines(&rest[span.end..]).to_owned(),
    }
}

/// Walks the lines of `rest` up to `window_end`, recording the latest cut of each kind; cuts
/// inside a fence that opens `rest` are recorded up to `fence_window_end`.
fn scan(rest: &str, window_end: usize, fence_window_end: Option<usize>) -> Candidates {
    let mut found = Candidates::default();
    let first_text = rest.len() - rest.trim_start().len();
    let mut fence: Option<Fence> = None;
    let mut in_leading_fence = false;
    let mut pos = 0;
    while pos < rest.len() && pos <= window_end {
        let line_end = rest[pos..].find('\n').map_or(rest.len(), |i| pos + i);
        let line = &rest[pos..line_end];
        let is_opener = match &fence {
            None => {
                fence = Fence::open(line);
                in_leading_fence = fence.is_some() && pos == 0;
                fence.is_some()
            }
            Some(open) => {
                if open.closes(line) {
                    fence = None;
                    in_leading_fence = false;
                }
                false
            }
        };
        let inside = fence.is_some() && !is_opener;
        if fence.is_none() && !is_opener {
            let (sentence, word) = scan_line(rest, pos..line_end, window_end, first_text, true);
            found.sentence = sentence.or(found.sentence);
            found.word = word.or(found.word);
        } else if let (true, Some(budget)) = (inside && in_leading_fence, fence_window_end) {
            let (_, word) = scan_line(rest, pos..line_end, budget, first_text, false);
            found.code_word = word.or(found.code_word);
        }
        if line_end == rest.len() {
            break;
        }
        let start = pos + line.trim_end().len();
        let (next, crossed_blank) = skip_blank_lines(rest, line_end + 1);
        let span = Span { start, end: next };
        if fence.is_none() && start <= window_end && start > first_text {
            if crossed_blank {
                found.paragraph = Some(span);
            }
            found.line = Some(span);
        } else if inside && in_leading_fence && fence_window_end.is_some_and(|b| start <= b) {
            found.code_line = Some(span);
        }
        pos = next;
    }
    found
}

/// The latest sentence (only in prose) and word boundaries up to `limit` in the line at `range`:
/// runs of whitespace between two non-whitespace chars, and the point right after a CJK stop.
fn scan_line(
    rest: &str,
    range: std::ops::Range<usize>,
    limit: usize,
    first_text: usize,
    prose: bool,
) -> (Option<Span>, Option<Span>) {
    let (start, end) = (range.start, range.end);
    let line = &rest[range];
    let (mut sentence, mut word) = (None, None);
    let mut before: [Option<char>; 2] = [None, None];
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at = start + i;
        if at > limit {
            break;
        }
        if c.is_whitespace() {
            let mut run_end = at + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !d.is_whitespace() {
                    break;
                }
                run_end = start + j + d.len_utf8();
                chars.next();
            }
            let between_words = before[0].is_some() && run_end < end && at > first_text;
            if between_words {
                let span = Span {
                    start: at,
                    end: run_end,
                };
                word = Some(span);
                if prose && ends_sentence(before) {
                    sentence = Some(span);
                }
            }
            before = [Some(' '), None];
            continue;
        }
        let after = at + c.len_utf8();
        if prose && is_cjk_full_stop(c) && after < end && after <= limit {
            sentence = Some(Span {
                start: after,
                end: after,
            });
        }
        before = [Some(c), before[0]];
    }
    (sentence, word)
}

fn ends_sentence([last, previous]: [Option<char>; 2]) -> bool {
    let is_stop = |c: Option<char>| {
        matches!(c, Some('.' | '!' | '?' | '…')) || c.is_some_and(is_cjk_full_stop)
    };
    let is_closing = |c: Option<char>| {
        matches!(
            c,
            Some('"' | '\'' | ')' | ']' | '”' | '’' | '»' | '」' | '』')
        )
    };
    is_stop(last) || (is_closing(last) && is_stop(previous))
}

fn is_cjk_full_stop(c: char) -> bool {
    matches!(c, '。' | '！' | '？')
}

/// The latest grapheme boundary in `(min_exclusive, max_inclusive]`, if any.
fn grapheme_cut(rest: &str, min_exclusive: usize, max_inclusive: usize) -> Option<usize> {
    rest.grapheme_indices(true)
        .map(|(i, _)| i)
        .take_while(|i| *i <= max_inclusive)
        .filter(|i| *i > min_exclusive)
        .last()
}

/// From `from` (a line start), skips whitespace-only lines; returns the start of the next
/// non-blank line and whether any blank line was skipped.
fn skip_blank_lines(text: &str, mut from: usize) -> (usize, bool) {
    let mut crossed = false;
    while let Some(nl) = text[from..].find('\n') {
        if !text[from..from + nl].trim().is_empty() {
            break;
        }
        from += nl + 1;
        crossed = true;
    }
    if text[from..].trim().is_empty() {
        return (text.len(), crossed);
    }
    (from, crossed)
}

fn trim_leading_blank_lines(text: &str) -> &str {
    let (start, _) = skip_blank_lines(text, 0);
    &text[start..]
}

/// Whether `text` has at most `limit` chars, without counting past the limit.
fn fits(text: &str, limit: usize) -> bool {
    text.char_indices().nth(limit).is_none()
}

/// The byte offset of the char at index `chars`, or the text's length when it is shorter.
fn byte_offset_of_char(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests;
