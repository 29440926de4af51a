use super::*;
use unicode_segmentation::UnicodeSegmentation;

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn non_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn assert_parts_are_valid(parts: &[String], limit: usize) {
    for part in parts {
        assert!(!part.trim().is_empty(), "empty part in {parts:?}");
        assert!(
            chars(part) <= limit,
            "part of {} chars > {limit}: {part:?}",
            chars(part)
        );
    }
}

#[test]
fn a_short_text_is_one_part_unchanged() {
    let text = "  Hello *there*!\n\nHow are you?  ";
    assert_eq!(
        split_message(text, WHATSAPP_TEXT_LIMIT),
        vec![text.to_owned()]
    );
}

#[test]
fn empty_or_blank_text_gives_no_parts() {
    assert!(split_message("", WHATSAPP_TEXT_LIMIT).is_empty());
    assert!(split_message(" \n\n \t", 2).is_empty());
}

#[test]
fn a_text_exactly_at_the_limit_is_not_split() {
    let text = "ação ".repeat(20);
    let text = text.trim_end();
    assert_eq!(chars(text), 99);
    assert_eq!(split_message(text, 99), vec![text.to_owned()]);
    let parts = split_message(text, 98);
    assert_eq!(parts.len(), 2);
    assert_parts_are_valid(&parts, 98);
}

#[test]
fn the_default_limit_is_what_whatsapp_accepts() {
    let text = "word ".repeat(2000);
    let parts = split_message(&text, WHATSAPP_TEXT_LIMIT);
    assert_eq!(parts.len(), 3);
    assert_parts_are_valid(&parts, 4096);
}

#[test]
fn paragraphs_are_packed_several_to_a_part() {
    let paragraphs: Vec<String> = (0..10)
        .map(|i| format!("Paragraph {i} has some words."))
        .collect();
    let text = paragraphs.join("\n\n");
    let parts = split_message(&text, 100);
    assert_parts_are_valid(&parts, 100);
    // 29 chars each, 2 for each blank line: three fit in 100.
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[0], paragraphs[..3].join("\n\n"));
    assert_eq!(parts[3], paragraphs[9]);
}

#[test]
fn a_paragraph_break_is_preferred_over_a_later_line_break() {
    let text = "First paragraph.\n\nSecond, line one\nline two\nline three that goes on";
    let parts = split_message(text, 50);
    assert_eq!(parts[0], "First paragraph.");
    assert_parts_are_valid(&parts, 50);
}

#[test]
fn lines_are_split_at_line_breaks_before_sentences() {
    let text = "- one item. With two sentences.\n- two\n- three is here. And more text follows it.";
    let parts = split_message(text, 45);
    assert_eq!(parts[0], "- one item. With two sentences.\n- two");
    assert_parts_are_valid(&parts, 45);
}

#[test]
fn a_paragraph_longer_than_the_limit_is_split_between_sentences() {
    let text = "The parcel left the warehouse. It is on the truck now! Will it arrive today? \
                We think so. Thanks for waiting.";
    let parts = split_message(text, 60);
    assert_parts_are_valid(&parts, 60);
    assert!(parts.len() >= 2);
    for part in &parts {
        assert!(
            part.ends_with(['.', '!', '?']),
            "cut mid-sentence: {part:?}"
        );
    }
    assert_eq!(
        parts[0],
        "The parcel left the warehouse. It is on the truck now!"
    );
}

#[test]
fn cjk_text_is_split_after_full_stops() {
    let text = "这是第一句话。这是第二句话！这是第三句话？这是第四句话。";
    let parts = split_message(text, 15);
    assert_eq!(
        parts,
        vec![
            "这是第一句话。这是第二句话！",
            "这是第三句话？这是第四句话。"
        ]
    );
}

#[test]
fn a_long_sentence_is_split_between_words() {
    let text = "one two three four five six seven eight nine ten eleven twelve";
    let parts = split_message(text, 20);
    assert_parts_are_valid(&parts, 20);
    assert_eq!(parts[0], "one two three four");
    assert_eq!(parts.join(" "), text);
}

#[test]
fn a_word_longer_than_the_limit_is_cut_between_characters() {
    let word = "é日🎉".repeat(10);
    let parts = split_message(&word, 7);
    assert_parts_are_valid(&parts, 7);
    assert_eq!(parts.concat(), word);
    assert_eq!(chars(&parts[0]), 7);
}

#[test]
fn emoji_sequences_are_never_broken_apart() {
    let family = "👨‍👩‍👧‍👦"; // 7 chars joined by zero-width joiners
    let thumbs = "👍🏽"; // 2 chars: emoji and skin-tone modifier
    let text = format!("{family}{thumbs}").repeat(6);
    let parts = split_message(&text, 10);
    assert_parts_are_valid(&parts, 10);
    assert_eq!(parts.concat(), text);
    for part in &parts {
        for grapheme in part.graphemes(true) {
            assert!(
                grapheme == family || grapheme == thumbs,
                "broken: {grapheme:?}"
            );
        }
    }
}

fn code_fence_reply() -> (String, Vec<String>) {
    let code: Vec<String> = (0..30)
        .map(|i| format!("let value_{i} = compute({i});"))
        .collect();
    let text = format!(
        "Here is the code:\n\n```rust\n{}\n```\n\nThat is all.",
        code.join("\n")
    );
    (text, code)
}

#[test]
fn a_code_fence_too_long_for_one_part_is_closed_and_reopened() {
    let (text, code) = code_fence_reply();
    let parts = split_message(&text, 200);
    assert_parts_are_valid(&parts, 200);
    assert_eq!(parts[0], "Here is the code:");
    assert!(parts
        .last()
        .is_some_and(|p| p.ends_with("```\n\nThat is all.")));
    let code_parts = &parts[1..];
    assert!(code_parts.len() >= 4);
    let mut lines = Vec::new();
    for part in code_parts {
        assert!(part.starts_with("```rust\n"), "not reopened: {part:?}");
        assert_eq!(
            part.matches("\n```").count(),
            1,
            "not closed once: {part:?}"
        );
        lines.extend(
            part.lines()
                .filter(|l| l.starts_with("let "))
                .map(str::to_owned),
        );
    }
    assert_eq!(lines, code);
}

#[test]
fn a_code_fence_that_fits_is_moved_whole_to_the_next_part() {
    let prose = "Some prose before the code. ".repeat(4);
    let text = format!(
        "{}\n```\nfn main() {{\n    println!(\"hi\");\n}}\n```\nafter",
        prose.trim()
    );
    let parts = split_message(&text, 120);
    assert_parts_are_valid(&parts, 120);
    assert_eq!(parts[0], prose.trim());
    assert_eq!(
        parts[1],
        "```\nfn main() {\n    println!(\"hi\");\n}\n```\nafter"
    );
}

#[test]
fn blank_lines_inside_a_fence_are_not_paragraph_breaks() {
    let text = "Intro line here.\n```\nalpha\n\nbeta\n```";
    let parts = split_message(text, 30);
    assert_eq!(parts, vec!["Intro line here.", "```\nalpha\n\nbeta\n```"]);
}

/// A small deterministic PRNG (xorshift64*) so the property loop needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn random_reply(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "a",
        "the",
        "parcel",
        "ação",
        "日本語",
        "🎉",
        "👨‍👩‍👧‍👦",
        "👍🏽",
        "naïve",
        "end.",
        "why?",
        "wow!",
        "完了。",
        "*bold*",
        "x",
        "supercalifragilisticexpialidocious",
        "—",
        "e\u{301}",
    ];
    const SEPARATORS: &[&str] = &[" ", " ", " ", " ", "  ", "\n", "\n\n", "\n\n\n", " \n "];
    let mut text = String::new();
    for _ in 0..rng.below(400) {
        if rng.below(40) == 0 {
            text.push_str(rng.pick(&["\n```\n", "\n```py\n", "\n~~~\n"]));
        }
        if rng.below(60) == 0 {
            text.push_str(&"z".repeat(rng.below(300)));
        }
        text.push_str(rng.pick(WORDS));
        text.push_str(rng.pick(SEPARATORS));
    }
    text
}

#[test]
fn every_split_of_random_replies_keeps_all_text_within_the_limit() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..600 {
        let text = random_reply(&mut rng);
        let limit = 20 + rng.below(300);
        let parts = split_message(&text, limit);
        assert_parts_are_valid(&parts, limit);
        // Reopened fences repeat the opening line: compare without fence lines.
        let strip = |s: &str| {
            let kept: Vec<&str> = s
                .lines()
                .filter(|l| !l.trim_start().starts_with(['`', '~']))
                .collect();
            non_whitespace(&kept.join("\n")).replace(['`', '~'], "")
        };
        let joined: String = parts.join("\n");
        assert_eq!(strip(&joined), strip(&text), "round {round}, limit {limit}");
        if !text.contains(['`', '~']) {
            assert_eq!(
                non_whitespace(&joined),
                non_whitespace(&text),
                "round {round}"
            );
        }
        if text.trim().is_empty() {
            assert!(parts.is_empty());
        }
    }
}

#[test]
fn tiny_limits_never_panic_or_loop() {
    let text = "```\ncode line\n```\n👨‍👩‍👧‍👦 ação. 日本語。";
    for limit in 0..12 {
        let parts = split_message(text, limit);
        assert_parts_are_valid(&parts, limit.max(1));
        let strip = |s: &str| non_whitespace(s).replace('`', "");
        assert_eq!(strip(&parts.concat()), strip(text), "limit {limit}");
    }
}

// Regressions found by the property tests (see FUZZING.md).

#[test]
fn a_limit_smaller_than_the_indentation_gives_no_blank_part() {
    assert_eq!(split_message(" A", 1), vec!["A".to_owned()]);
    let parts = split_message("   indented words here", 2);
    assert_parts_are_valid(&parts, 2);
    assert_eq!(non_whitespace(&parts.concat()), "indentedwordshere");
}
