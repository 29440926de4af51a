//! Inline Markdown (emphasis, code spans, links) to WhatsApp syntax, within one block of text.
//!
//! The text is cut into pieces: finished text (code spans, links, URLs, escaped chars, which are
//! never touched again) and runs of `*`, `_` or `~~` that may open or close emphasis. Runs are
//! then paired with CommonMark's delimiter rules, simplified: a run opens when it starts a word
//! and closes when it ends one, so `snake_case_names` and `2 * 3 * 4` stay as they are.

/// How strong emphasis renders: as bold, or (inside an already bold heading) as plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Body,
    Heading,
}

/// Deeper nesting of link texts than this is left as literal text.
const MAX_LINK_DEPTH: usize = 4;

/// Converts the inline Markdown of `src` to WhatsApp's syntax.
pub(super) fn convert(src: &str, style: Style) -> String {
    convert_at_depth(src, style, 0)
}

struct Run {
    ch: char,
    /// Chars of the run not yet used by a pair; they print literally.
    left: usize,
    original: usize,
    can_open: bool,
    can_close: bool,
    /// Markers printed after the literal chars (this run opened them), innermost first.
    opens: Vec<&'static str>,
    /// Markers printed before the literal chars (this run closed them), innermost first.
    closes: Vec<&'static str>,
}

enum Piece {
    Text(String),
    Run(Run),
}

struct Pieces(Vec<Piece>);

impl Pieces {
    fn text(&mut self, s: &str) {
        if let Some(Piece::Text(last)) = self.0.last_mut() {
            last.push_str(s);
        } else {
            self.0.push(Piece::Text(s.to_owned()));
        }
    }
}

fn convert_at_depth(src: &str, style: Style, depth: usize) -> String {
    let mut pieces = Pieces(Vec::new());
    let mut i = 0;
    while let Some(c) = src[i..].chars().next() {
        let consumed = match c {
            '\\' => escape(src, i, &mut pieces),
            '`' => code_span(src, i, &mut pieces),
            '*' | '_' | '~' => delimiter_run(src, i, c, &mut pieces),
            '!' if src[i + 1..].starts_with('[') => image(src, i, &mut pieces),
            '[' if depth < MAX_LINK_DEPTH => link(src, i, style, depth, &mut pieces),
            '<' => autolink(src, i, &mut pieces),
            'h' | 'H' | 'w' | 'W' => bare_url(src, i, &mut pieces),
            _ => None,
        };
        match consumed {
            Some(len) => i += len,
            None => {
                pieces.text(&src[i..i + c.len_utf8()]);
                i += c.len_utf8();
            }
        }
    }
    pair_runs(&mut pieces.0, style);
    render(pieces.0)
}

/// `\*` prints `*` and is never emphasis; a backslash before a line break is a hard break.
fn escape(src: &str, i: usize, pieces: &mut Pieces) -> Option<usize> {
    let next = src[i + 1..].chars().next()?;
    if next == '\n' {
        pieces.text("\n");
        return Some(2);
    }
    next.is_ascii_punctuation().then(|| {
        pieces.text(&src[i + 1..i + 2]);
        2
    })
}

/// `` `code` `` stays as WhatsApp inline code, its content untouched.
fn code_span(src: &str, i: usize, pieces: &mut Pieces) -> Option<usize> {
    let ticks = run_length(src, i, '`');
    let (content_start, content_end) = find_code_span_end(src, i, ticks)?;
    let raw = &src[content_start..content_end];
    let mut content = raw.replace('\n', " ");
    if content.len() > 2
        && content.starts_with(' ')
        && content.ends_with(' ')
        && !content.trim().is_empty()
    {
        content = content[1..content.len() - 1].to_owned();
    }
    if content.contains('`') {
        pieces.text(&format!("```{content}```"));
    } else {
        pieces.text(&format!("`{content}`"));
    }
    Some(content_end + ticks - i)
}

/// For the backtick run of `ticks` at `i`, the byte range of the content up to the next run of
/// exactly as many backticks.
pub(super) fn find_code_span_end(src: &str, i: usize, ticks: usize) -> Option<(usize, usize)> {
    let start = i + ticks;
    let mut j = start;
    while let Some(found) = src[j..].find('`') {
        let at = j + found;
        let len = run_length(src, at, '`');
        if len == ticks {
            return Some((start, at));
        }
        j = at + len;
    }
    None
}

fn run_length(src: &str, i: usize, ch: char) -> usize {
    src[i..].chars().take_while(|c| *c == ch).count()
}

/// A run of `*` or `_`, or exactly `~~`, recorded with whether it may open or close emphasis.
fn delimiter_run(src: &str, i: usize, ch: char, pieces: &mut Pieces) -> Option<usize> {
    let len = run_length(src, i, ch);
    if ch == '~' && len != 2 {
        pieces.text(&src[i..i + len]);
        return Some(len);
    }
    let before = src[..i].chars().next_back();
    let after = src[i + len..].chars().next();
    let space_before = before.is_none_or(char::is_whitespace);
    let space_after = after.is_none_or(char::is_whitespace);
    let punct_before = before.is_some_and(is_punctuation);
    let punct_after = after.is_some_and(is_punctuation);
    let left_flanking = !space_after && (!punct_after || space_before || punct_before);
    let right_flanking = !space_before && (!punct_before || space_after || punct_after);
    let inside_number =
        before.is_some_and(|c| c.is_ascii_digit()) && after.is_some_and(|c| c.is_ascii_digit());
    let (can_open, can_close) = match ch {
        '_' => (
            left_flanking && (!right_flanking || punct_before),
            right_flanking && (!left_flanking || punct_after),
        ),
        // `2*3*4` is arithmetic, not emphasis.
        '*' if inside_number => (false, false),
        _ => (left_flanking, right_flanking),
    };
    pieces.0.push(Piece::Run(Run {
        ch,
        left: len,
        original: len,
        can_open,
        can_close,
        opens: Vec::new(),
        closes: Vec::new(),
    }));
    Some(len)
}

/// CommonMark counts Unicode punctuation and symbols (emoji included) as punctuation.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace())
}

/// `![alt](url)` becomes the bare URL: WhatsApp cannot show an image inline.
fn image(src: &str, i: usize, pieces: &mut Pieces) -> Option<usize> {
    let parsed = super::link::parse(src, i + 1)?;
    pieces.text(&parsed.destination);
    Some(parsed.end - i)
}

/// `[text](url)` becomes `text (url)`, or the bare URL when the text is the URL itself.
fn link(src: &str, i: usize, style: Style, depth: usize, pieces: &mut Pieces) -> Option<usize> {
    let parsed = super::link::parse(src, i)?;
    let label_src = &src[parsed.label.clone()];
    let label = convert_at_depth(label_src, style, depth + 1);
    let url = parsed.destination.as_str();
    if url.is_empty() {
        pieces.text(&label);
    } else if label.trim().is_empty() || super::link::same_target(label_src, url) {
        pieces.text(url.strip_prefix("mailto:").unwrap_or(url));
    } else {
        pieces.text(&format!("{label} ({url})"));
    }
    Some(parsed.end - i)
}

/// `<https://example.com>` and `<ana@example.com>` become the bare address.
fn autolink(src: &str, i: usize, pieces: &mut Pieces) -> Option<usize> {
    let close = src[i + 1..].find(['>', '<', ' ', '\n'])?;
    let inner = &src[i + 1..i + 1 + close];
    if !src[i + 1 + close..].starts_with('>') {
        return None;
    }
    let lower = inner.to_ascii_lowercase();
    let is_url = ["http://", "https://", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s));
    let is_email = inner.contains('@') && !inner.contains(':');
    if !(is_url || is_email) {
        return None;
    }
    pieces.text(inner.strip_prefix("mailto:").unwrap_or(inner));
    Some(close + 2)
}

/// A bare `https://…` or `www.…` is copied as it is, so `_` or `*` inside it is never emphasis.
fn bare_url(src: &str, i: usize, pieces: &mut Pieces) -> Option<usize> {
    let starts_word = src[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric());
    let rest = &src[i..];
    let is_url = ["http://", "https://", "www."].iter().any(|prefix| {
        rest.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    });
    if !starts_word || !is_url {
        return None;
    }
    let len = src[i..]
        .find(|c: char| c.is_whitespace() || c == '<')
        .unwrap_or(src.len() - i);
    let url = trim_url_end(&src[i..i + len]);
    pieces.text(url);
    Some(url.len())
}

/// GFM's rule: trailing punctuation, and a `)` without its `(`, are not part of a bare URL.
fn trim_url_end(url: &str) -> &str {
    let mut url = url;
    loop {
        let Some(last) = url.chars().next_back() else {
            return url;
        };
        let unbalanced_paren = last == ')' && url.matches(')').count() > url.matches('(').count();
        if matches!(
            last,
            '?' | '!' | '.' | ',' | ':' | ';' | '*' | '_' | '~' | '\'' | '"'
        ) || unbalanced_paren
        {
            url = &url[..url.len() - last.len_utf8()];
        } else {
            return url;
        }
    }
}

/// Pairs closers with the nearest matching opener before them (CommonMark's "process emphasis").
fn pair_runs(pieces: &mut [Piece], style: Style) {
    let mut openers: Vec<usize> = Vec::new();
    for closer in 0..pieces.len() {
        let Piece::Run(run) = &pieces[closer] else {
            continue;
        };
        let (ch, can_open, can_close) = (run.ch, run.can_open, run.can_close);
        if can_close {
            while let Some(pos) = openers
                .iter()
                .rposition(|&o| can_pair(&pieces[o], &pieces[closer]))
            {
                let opener = openers[pos];
                let (left_open, left_close) = mark_pair(pieces, opener, closer, ch, style);
                // Runs between the pair can no longer open anything.
                openers.truncate(pos + 1);
                if left_open == 0 {
                    openers.pop();
                }
                if left_close == 0 {
                    break;
                }
            }
        }
        if can_open && matches!(&pieces[closer], Piece::Run(r) if r.left > 0) {
            openers.push(closer);
        }
    }
}

fn can_pair(opener: &Piece, closer: &Piece) -> bool {
    let (Piece::Run(o), Piece::Run(c)) = (opener, closer) else {
        return false;
    };
    if o.ch != c.ch || o.left == 0 || c.left == 0 {
        return false;
    }
    // CommonMark's "rule of 3", which keeps `*foo**bar*` from pairing the wrong way.
    let both_ways = o.can_close || c.can_open;
    let multiple_of_3 =
        (o.original + c.original) % 3 == 0 && !(o.original % 3 == 0 && c.original % 3 == 0);
    o.ch == '~' || !(both_ways && multiple_of_3)
}

/// Uses chars from both runs for one emphasis and records its markers; returns what is left.
fn mark_pair(
    pieces: &mut [Piece],
    opener: usize,
    closer: usize,
    ch: char,
    style: Style,
) -> (usize, usize) {
    let (o_left, c_left) = match (&pieces[opener], &pieces[closer]) {
        (Piece::Run(o), Piece::Run(c)) => (o.left, c.left),
        _ => return (0, 0),
    };
    let used = if ch == '~' {
        2
    } else if o_left >= 3 && c_left >= 3 {
        3
    } else if o_left >= 2 && c_left >= 2 {
        2
    } else {
        1
    };
    let (open, close) = match (ch, used, style) {
        ('~', _, _) => ("~", "~"),
        (_, 3, Style::Body) => ("*_", "_*"),
        (_, 2, Style::Body) => ("*", "*"),
        (_, 2, Style::Heading) => ("", ""),
        _ => ("_", "_"),
    };
    if let Piece::Run(o) = &mut pieces[opener] {
        o.left -= used;
        o.opens.push(open);
    }
    if let Piece::Run(c) = &mut pieces[closer] {
        c.left -= used;
        c.closes.push(close);
    }
    (o_left - used, c_left - used)
}

fn render(pieces: Vec<Piece>) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(&text),
            Piece::Run(run) => {
                run.closes.iter().for_each(|m| out.push_str(m));
                out.extend(std::iter::repeat_n(run.ch, run.left));
                run.opens.iter().rev().for_each(|m| out.push_str(m));
            }
        }
    }
    out
}
