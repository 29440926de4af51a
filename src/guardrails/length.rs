//! `max_length`: cut a text to a number of characters without breaking a char or a redaction
//! token.

const TOKEN_PREFIX: &str = "[REDACTED_";

/// `text` cut to at most `max_chars` characters (Unicode scalar values). The cut never falls
/// inside a char, and never inside a `[REDACTED_<KIND>]` token: such a token is dropped whole.
pub fn truncate_chars(text: &str, max_chars: usize) -> &str {
    let Some((cut, _)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    let cut = outside_token(text, cut);
    &text[..cut]
}

/// Moves `cut` back to the start of the redaction token it falls inside, if any. A token holds
/// no `[` after its first char, so only the last `[` before the cut can open it.
fn outside_token(text: &str, cut: usize) -> usize {
    let Some(start) = text[..cut].rfind('[') else {
        return cut;
    };
    match token_len(&text[start..]) {
        Some(len) if start + len > cut => start,
        _ => cut,
    }
}

/// The byte length of the `[REDACTED_<KIND>]` token `s` starts with, if it starts with one.
fn token_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix(TOKEN_PREFIX)?;
    let letters = rest.bytes().take_while(u8::is_ascii_uppercase).count();
    (letters > 0 && rest.as_bytes().get(letters) == Some(&b']'))
        .then_some(TOKEN_PREFIX.len() + letters + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_within_the_limit_is_kept_whole() {
        assert_eq!(truncate_chars("hello", 5), "hello");
        assert_eq!(truncate_chars("hello", 50), "hello");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn a_long_text_is_cut_to_the_number_of_characters() {
        assert_eq!(truncate_chars("hello world", 5), "hello");
        assert_eq!(truncate_chars("hello", 0), "");
    }

    #[test]
    fn multibyte_characters_count_as_one_and_are_never_split() {
        assert_eq!(truncate_chars("héllo wörld", 7), "héllo w");
        assert_eq!(truncate_chars("日本語のテキスト", 3), "日本語");
        assert_eq!(truncate_chars("👍🏽👍🏽", 1), "👍");
    }

    #[test]
    fn a_cut_inside_a_redaction_token_drops_the_token_whole() {
        let text = "mail me at [REDACTED_EMAIL] today";
        for max in 12..27 {
            assert_eq!(truncate_chars(text, max), "mail me at ", "max {max}");
        }
        assert_eq!(truncate_chars(text, 27), "mail me at [REDACTED_EMAIL]");
        assert_eq!(truncate_chars(text, 11), "mail me at ");
    }

    #[test]
    fn a_bracket_that_is_not_a_token_is_cut_like_any_text() {
        assert_eq!(
            truncate_chars("see [REDACTED_ note] here", 12),
            "see [REDACTE"
        );
        assert_eq!(truncate_chars("[REDACTED_x]", 11), "[REDACTED_x");
    }
}
