//! The model's Markdown converted to WhatsApp's own formatting: `*bold*`, `_italic_`,
//! `~strike~`, `` `code` `` and ```` ``` ```` blocks. Headings become bold lines, links show their
//! URL, lists get bullets, tables become one line per row; code is never rewritten.
//!
//! Hand-rolled rather than built on a full CommonMark parser so that everything that is not
//! Markdown syntax (line breaks, spacing, odd characters) comes out exactly as it went in.

pub(super) mod fence;
mod inline;
mod link;
mod table;

use fence::Fence;
use inline::{convert, Style};

/// What a horizontal rule becomes: WhatsApp has none, so a short line of em dashes.
const RULE: &str = "———";

/// Converts `markdown` to WhatsApp's formatting syntax. Never panics, whatever the input.
pub fn to_whatsapp(markdown: &str) -> String {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Output::default();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(fence) = Fence::open(line) {
            out.paragraph(&mut paragraph);
            i = out.code_block(&lines, i, &fence);
            continue;
        }
        if line.trim().is_empty() {
            out.paragraph(&mut paragraph);
            out.blank();
            i += 1;
            continue;
        }
        if let Some((rows, used)) = table::flatten(&lines[i..]) {
            out.paragraph(&mut paragraph);
            rows.into_iter().for_each(|row| out.line(row));
            i += used;
            continue;
        }
        if is_setext_underline(line) && !paragraph.is_empty() {
            let title = paragraph.join(" ");
            paragraph.clear();
            out.heading(&title);
        } else if is_rule(line) {
            out.paragraph(&mut paragraph);
            out.line(RULE.to_owned());
        } else if let Some(converted) = block_line(line) {
            out.paragraph(&mut paragraph);
            if converted.is_empty() {
                out.blank(); // an empty heading
            } else {
                out.line(converted);
            }
        } else {
            paragraph.push(line);
        }
        i += 1;
    }
    out.paragraph(&mut paragraph);
    out.finish()
}

/// A line that is a block of its own (heading, list item, quote), converted; `None` for a line
/// of a paragraph.
fn block_line(line: &str) -> Option<String> {
    if let Some(title) = atx_heading(line) {
        return Some(bold_line(title));
    }
    if let Some(inner) = quote(line) {
        let inner = block_line(inner).unwrap_or_else(|| convert(inner.trim_end(), Style::Body));
        return Some(if inner.is_empty() {
            ">".to_owned()
        } else {
            format!("> {inner}")
        });
    }
    if let Some((indent, item)) = bullet(line) {
        let item = match item.get(..4) {
            Some("[ ] ") => format!("☐ {}", &item[4..]),
            Some("[x] " | "[X] ") => format!("☑ {}", &item[4..]),
            _ => item.to_owned(),
        };
        return Some(format!(
            "{indent}• {}",
            convert(item.trim_end(), Style::Body)
        ));
    }
    if let Some((marker, item)) = numbered(line) {
        return Some(format!(
            "{marker} {}",
            convert(item.trim_end(), Style::Body)
        ));
    }
    None
}

fn bold_line(title: &str) -> String {
    let title = convert(title.trim(), Style::Heading);
    if title.is_empty() {
        String::new()
    } else {
        format!("*{title}*")
    }
}

/// `## Title ##` → `Title`.
fn atx_heading(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) || line.len() - trimmed.len() > 3 {
        return None;
    }
    let rest = &trimmed[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None; // `#hashtag`
    }
    let rest = rest.trim();
    let without_closing = rest.trim_end_matches('#');
    if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        Some(without_closing.trim_end())
    } else {
        Some(rest)
    }
}

/// `> text` (also `>> text`) → `text`.
fn quote(line: &str) -> Option<&str> {
    let mut rest = line.trim_start().strip_prefix('>')?;
    while let Some(deeper) = rest.trim_start().strip_prefix('>') {
        rest = deeper;
    }
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `  - item` → (`  `, `item`); the marker is `-`, `*` or `+` followed by a space.
fn bullet(line: &str) -> Option<(&str, &str)> {
    let indent = &line[..line.len() - line.trim_start().len()];
    let rest = &line[indent.len()..];
    let item = rest.strip_prefix(['-', '*', '+'])?;
    let text = item.trim_start();
    (item.starts_with([' ', '\t']) && !text.is_empty()).then_some((indent, text))
}

/// `  12. item` → (`  12.`, `item`).
fn numbered(line: &str) -> Option<(&str, &str)> {
    let indent = line.len() - line.trim_start().len();
    let digits = line[indent..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let marker_end = indent + digits + 1;
    let delimiter = line.as_bytes().get(indent + digits)?;
    if !(1..=9).contains(&digits) || !matches!(delimiter, b'.' | b')') {
        return None;
    }
    let item = &line[marker_end..];
    let text = item.trim_start();
    (item.starts_with([' ', '\t']) && !text.is_empty()).then_some((&line[..marker_end], text))
}

/// `---`, `***`, `___` (spaces allowed between).
fn is_rule(line: &str) -> bool {
    let marks: Vec<char> = line.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3 && matches!(marks[0], '-' | '*' | '_') && marks.iter().all(|c| *c == marks[0])
}

/// `===` or `---` under a paragraph makes it a heading (CommonMark's setext headings).
fn is_setext_underline(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && (trimmed.chars().all(|c| c == '=') || trimmed.chars().all(|c| c == '-'))
}

/// The converted lines, with runs of blank lines collapsed to one and none at either end.
#[derive(Default)]
struct Output {
    lines: Vec<String>,
    blank_pending: bool,
}

impl Output {
    fn line(&mut self, line: String) {
        if self.blank_pending && !self.lines.is_empty() {
            self.lines.push(String::new());
        }
        self.blank_pending = false;
        self.lines.push(line);
    }

    fn blank(&mut self) {
        self.blank_pending = true;
    }

    fn heading(&mut self, title: &str) {
        let line = bold_line(title);
        if !line.is_empty() {
            self.line(line);
        }
    }

    /// Converts and emits the pending paragraph lines (inline syntax may span its lines).
    fn paragraph(&mut self, lines: &mut Vec<&str>) {
        if lines.is_empty() {
            return;
        }
        let text: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
        lines.clear();
        for line in convert(&text.join("\n"), Style::Body).split('\n') {
            self.line(line.to_owned());
        }
    }

    /// Emits the fenced block opened at `lines[start]` as a WhatsApp block, its lines verbatim
    /// (the language tag dropped); returns the index after the closing fence.
    fn code_block(&mut self, lines: &[&str], start: usize, fence: &Fence) -> usize {
        let mut end = start + 1;
        while end < lines.len() && !fence.closes(lines[end]) {
            end += 1;
        }
        let body = &lines[start + 1..end];
        if !body.iter().all(|l| l.trim().is_empty()) {
            self.line("```".to_owned());
            for line in body {
                self.lines.push(strip_indent(line, fence.indent).to_owned());
            }
            self.lines.push("```".to_owned());
        }
        end + 1
    }

    fn finish(self) -> String {
        self.lines.join("\n")
    }
}

/// Removes up to `indent` leading spaces (a fence indented in a list indents its content too).
fn strip_indent(line: &str, indent: usize) -> &str {
    let spaces = line.bytes().take(indent).take_while(|b| *b == b' ').count();
    &line[spaces..]
}

#[cfg(test)]
mod tests;
