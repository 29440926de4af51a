//! A split reply joins back to the original text, and every part fits the limit.

use proptest::prelude::*;
use std::collections::HashSet;
use wagate::whatsapp::split::{split_message, WHATSAPP_TEXT_LIMIT};

/// Pieces that stress the cut rules: words, sentence ends, line and paragraph breaks, long
/// words, emoji sequences (ZWJ, skin tones, flags), combining marks, CJK and code fences.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z]{1,12}",
        3 => prop::sample::select(vec![" ", " ", "  ", "\t", "\n", "\n\n", "\n \n"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            ". ", "! ", "? ", "… ", "\") ", "。", "！", "👨\u{200d}👩\u{200d}👧\u{200d}👦",
            "👍🏽", "🏳\u{fe0f}\u{200d}🌈", "🇧🇷", "e\u{301}", "ação", "日本語のテキスト",
            "\u{200d}", "*bold*", "`code`",
        ]).prop_map(str::to_owned),
        1 => "[a-z]{20,140}",
        1 => "\\PC{1,12}",
        1 => (prop::sample::select(vec!["```", "~~~", "````"]), "[a-z]{0,8}", code_lines())
            .prop_map(|(marker, lang, body)| format!("\n{marker}{lang}\n{body}\n{marker}\n")),
    ]
}

fn code_lines() -> impl Strategy<Value = String> {
    prop::collection::vec("[ -_a-~]{0,70}", 0..12).prop_map(|lines| lines.join("\n"))
}

fn text() -> impl Strategy<Value = String> {
    (prop::collection::vec(piece(), 0..200), 1usize..3)
        .prop_map(|(pieces, times)| pieces.concat().repeat(times))
}

fn limit() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 50usize..300, 1 => 300usize..4096, 1 => Just(4096usize)]
}

fn ink(s: &str) -> Vec<char> {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The closing line the splitter adds when it cuts inside the fence that opens `part`, if
/// `part` ends with one.
fn added_closer(part: &str) -> Option<String> {
    let first = part.lines().next()?.trim_start();
    let marker = first.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = first.chars().take_while(|c| *c == marker).count();
    let closer: String = std::iter::repeat_n(marker, len).collect();
    (len >= 3 && part.ends_with(&format!("\n{closer}"))).then_some(closer)
}

/// Whether `parts`, with the fence markers the splitter may have added at each cut removed,
/// hold exactly the non-whitespace text of `original`, in order. Whether a closing fence at the
/// end of a part was added or was in the text is not visible, so both readings are tried.
fn joins_back(original: &str, parts: &[String]) -> bool {
    let want = ink(original);
    // (position in `want`, whether the previous cut added a closer and a reopened fence)
    let mut states: HashSet<(usize, bool)> = HashSet::from([(0, false)]);
    for (k, part) in parts.iter().enumerate() {
        let opener = part.lines().next().unwrap_or_default();
        let closer = added_closer(part);
        let can_add = k + 1 < parts.len()
            && closer.is_some()
            && parts[k + 1].starts_with(&format!("{}\n", opener.trim_end()));
        let mut next = HashSet::new();
        for &(pos, reopened) in &states {
            for added in [false, true] {
                if added && !can_add {
                    continue;
                }
                let mut seg = ink(part);
                if added {
                    let tail = ink(closer.as_deref().unwrap_or_default()).len();
                    seg.truncate(seg.len() - tail);
                }
                if reopened {
                    let head = ink(opener).len();
                    if seg.len() < head {
                        continue;
                    }
                    seg.drain(..head);
                }
                if want[pos..].starts_with(&seg) {
                    next.insert((pos + seg.len(), added));
                }
            }
        }
        states = next;
    }
    states.contains(&(want.len(), false))
}

proptest! {
    #![proptest_config(super::cases(200))]

    #[test]
    fn a_split_reply_joins_back_and_every_part_fits(text in text(), limit in limit()) {
        let parts = split_message(&text, limit);
        for part in &parts {
            prop_assert!(!part.trim().is_empty(), "blank part in {:?}", parts);
            prop_assert!(part.chars().count() <= limit, "part over {}: {:?}", limit, part);
        }
        if text.trim().is_empty() {
            prop_assert!(parts.is_empty());
        } else if text.chars().count() <= limit {
            prop_assert_eq!(&parts, &vec![text.clone()]);
        }
        prop_assert!(joins_back(&text, &parts), "text lost or changed: {:?}", parts);
    }

    #[test]
    fn arbitrary_unicode_splits_within_any_limit(text in "\\PC{0,400}", limit in 1usize..80) {
        let parts = split_message(&text, limit);
        for part in &parts {
            prop_assert!(!part.trim().is_empty());
            prop_assert!(part.chars().count() <= limit);
        }
        prop_assert!(joins_back(&text, &parts), "text lost or changed: {:?}", parts);
    }
}

fn long_text() -> impl Strategy<Value = String> {
    (prop::collection::vec(piece(), 200..400), 4usize..8)
        .prop_map(|(pieces, times)| pieces.concat().repeat(times))
}

proptest! {
    // Replies several times WhatsApp's limit: few cases, each one long.
    #![proptest_config(super::cases(12))]

    #[test]
    fn a_long_reply_splits_into_parts_whatsapp_accepts(text in long_text()) {
        let parts = split_message(&text, WHATSAPP_TEXT_LIMIT);
        for part in &parts {
            prop_assert!(!part.trim().is_empty());
            prop_assert!(part.chars().count() <= WHATSAPP_TEXT_LIMIT);
        }
        prop_assert!(joins_back(&text, &parts), "text lost or changed");
    }
}

#[test]
fn the_join_check_notices_a_lost_word() {
    let parts = vec!["Hello there.".to_owned(), "How are you?".to_owned()];
    assert!(joins_back("Hello there. How are you?", &parts));
    assert!(!joins_back("Hello there. How are you doing?", &parts));
}

#[test]
fn the_join_check_allows_the_fence_markers_the_splitter_adds() {
    let text = format!("```rust\n{}\n```", "let x = 1;\n".repeat(10));
    let parts = split_message(&text, 60);
    assert!(parts.len() > 1);
    assert!(joins_back(&text, &parts), "{parts:?}");
}
