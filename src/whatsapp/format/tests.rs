use super::to_whatsapp;

fn wa(markdown: &str) -> String {
    to_whatsapp(markdown)
}

#[test]
fn double_asterisks_and_underscores_become_whatsapp_bold() {
    assert_eq!(wa("This is **very** important"), "This is *very* important");
    assert_eq!(wa("This is __very__ important"), "This is *very* important");
}

#[test]
fn single_asterisks_and_underscores_become_whatsapp_italics() {
    assert_eq!(wa("an *italic* word"), "an _italic_ word");
    assert_eq!(wa("an _italic_ word"), "an _italic_ word");
}

#[test]
fn triple_asterisks_become_bold_italics() {
    assert_eq!(wa("***both*** here"), "*_both_* here");
    assert_eq!(wa("___both___"), "*_both_*");
}

#[test]
fn nested_emphasis_keeps_both_styles() {
    assert_eq!(
        wa("**bold with _italic_ inside**"),
        "*bold with _italic_ inside*"
    );
    assert_eq!(
        wa("*italic with **bold** inside*"),
        "_italic with *bold* inside_"
    );
    assert_eq!(wa("***strong** then em*"), "_*strong* then em_");
}

#[test]
fn double_tildes_become_strikethrough() {
    assert_eq!(wa("~~old price~~ new price"), "~old price~ new price");
    assert_eq!(wa("about ~5 minutes"), "about ~5 minutes");
}

#[test]
fn headings_of_any_level_become_bold_lines() {
    assert_eq!(wa("# Title"), "*Title*");
    assert_eq!(wa("### Step **two** ###"), "*Step two*");
    assert_eq!(wa("###### Deep _one_"), "*Deep _one_*");
    assert_eq!(wa("Intro\n## Section\nBody"), "Intro\n*Section*\nBody");
    assert_eq!(
        wa("Setext title\n============\nbody"),
        "*Setext title*\nbody"
    );
}

#[test]
fn hashtags_and_issue_numbers_are_not_headings() {
    assert_eq!(wa("#hashtag and #42"), "#hashtag and #42");
    assert_eq!(wa("# C#"), "*C#*");
}

#[test]
fn links_show_their_text_and_url() {
    assert_eq!(
        wa("See [the docs](https://example.com/docs) now"),
        "See the docs (https://example.com/docs) now"
    );
    assert_eq!(
        wa("[**Bold** link](https://x.io \"Title\")"),
        "*Bold* link (https://x.io)"
    );
}

#[test]
fn a_link_whose_text_is_its_url_shows_the_url_once() {
    assert_eq!(
        wa("[https://example.com](https://example.com)"),
        "https://example.com"
    );
    assert_eq!(
        wa("[example.com](https://example.com/)"),
        "https://example.com/"
    );
    assert_eq!(
        wa("[ana@example.com](mailto:ana@example.com)"),
        "ana@example.com"
    );
    assert_eq!(wa("<https://example.com>"), "https://example.com");
}

#[test]
fn parentheses_inside_a_link_url_are_kept() {
    assert_eq!(
        wa("[Rust](https://en.wikipedia.org/wiki/Rust_(programming_language)) is fun"),
        "Rust (https://en.wikipedia.org/wiki/Rust_(programming_language)) is fun"
    );
}

#[test]
fn images_become_their_url() {
    assert_eq!(
        wa("Look: ![a cat](https://img.example/cat.png)"),
        "Look: https://img.example/cat.png"
    );
}

#[test]
fn underscores_in_bare_urls_are_not_italics() {
    let text = "Go to https://example.com/_private_/a_b and www.x.com/_y_.";
    assert_eq!(wa(text), text);
}

#[test]
fn bullet_lists_get_bullets_and_keep_their_nesting() {
    let markdown = "- one\n* two\n  + nested **bold**\n    - deeper\n- [ ] todo\n- [x] done";
    assert_eq!(
        wa(markdown),
        "• one\n• two\n  • nested *bold*\n    • deeper\n• ☐ todo\n• ☑ done"
    );
}

#[test]
fn numbered_lists_are_kept() {
    assert_eq!(
        wa("1. first\n2) **second**\n   3. nested"),
        "1. first\n2) *second*\n   3. nested"
    );
}

#[test]
fn block_quotes_are_kept() {
    assert_eq!(
        wa("> quoted **text**\n>\n> - item"),
        "> quoted *text*\n>\n> • item"
    );
}

#[test]
fn horizontal_rules_become_a_dash_line() {
    assert_eq!(wa("above\n\n---\n\nbelow"), "above\n\n———\n\nbelow");
    assert_eq!(wa("* * *"), "———");
}

#[test]
fn tables_become_one_line_per_row_labelled_by_the_header() {
    let markdown =
        "| Plan | **Price** | Notes |\n|:---|---:|---|\n| Basic | $5 | |\n| Pro | $12 | `best` |";
    assert_eq!(
        wa(markdown),
        "Plan: Basic, Price: $5\nPlan: Pro, Price: $12, Notes: `best`"
    );
}

#[test]
fn a_pipe_without_a_separator_row_is_plain_text() {
    assert_eq!(wa("yes | no\nmaybe"), "yes | no\nmaybe");
}

#[test]
fn inline_code_is_never_rewritten() {
    assert_eq!(
        wa("Run `rm **x** _y_ [a](b)` then **go**"),
        "Run `rm **x** _y_ [a](b)` then *go*"
    );
    assert_eq!(wa("``a ` b``"), "```a ` b```");
}

#[test]
fn fenced_code_is_kept_verbatim_without_its_language_tag() {
    let markdown = "Code:\n```rust\nlet **x** = a_b_c * 2;\n\n# not a heading\n- not a list\n```\nDone **now**";
    assert_eq!(
        wa(markdown),
        "Code:\n```\nlet **x** = a_b_c * 2;\n\n# not a heading\n- not a list\n```\nDone *now*"
    );
}

#[test]
fn an_unclosed_fence_is_closed_at_the_end() {
    assert_eq!(wa("```\n**raw**"), "```\n**raw**\n```");
}

#[test]
fn snake_case_and_arithmetic_are_not_emphasis() {
    for text in [
        "rename file_name_here to other_name",
        "2 * 3 * 4 = 24",
        "2*3*4 = 24",
        "a * b",
        "C:\\Users\\me",
    ] {
        assert_eq!(wa(text), text);
    }
}

#[test]
fn unbalanced_markers_and_lone_backticks_stay_literal() {
    for text in [
        "**not closed",
        "a ` lone backtick",
        "[not a link",
        "![](",
        "_x",
        "~~x",
        "`",
        "[a](b",
    ] {
        assert_eq!(wa(text), text, "{text:?}");
    }
}

#[test]
fn escaped_markers_are_literal_and_never_emphasis() {
    assert_eq!(wa(r"\*not italic\* and 5\_000"), "*not italic* and 5_000");
}

#[test]
fn emoji_and_non_latin_text_pass_through() {
    let text = "Olá! 👋🏽 Ça va? 日本語のテキスト, عربى, 👨‍👩‍👧‍👦";
    assert_eq!(wa(text), text);
    assert_eq!(wa("这是**重点**内容"), "这是*重点*内容");
    assert_eq!(wa("**🎉 Parabéns!**"), "*🎉 Parabéns!*");
}

#[test]
fn plain_text_is_unchanged() {
    let text =
        "Hello Ana,\nyour order 12345 ships today (maybe tomorrow).\n\nThanks! :) 50% off <3";
    assert_eq!(wa(text), text);
}

#[test]
fn runs_of_blank_lines_collapse_to_one() {
    assert_eq!(wa("a\n\n\n\nb\n\n\nc\n\nd"), "a\n\nb\n\nc\n\nd");
    assert_eq!(wa("\n\nstart\n\n"), "start");
}

#[test]
fn blank_lines_inside_code_are_kept() {
    assert_eq!(wa("```\na\n\n\n\nb\n```"), "```\na\n\n\n\nb\n```");
}

#[test]
fn a_typical_model_reply_reads_well_on_whatsapp() {
    let markdown = "## Your order\n\nHi **Ana**! Here is what I found:\n\n\
        - Status: *shipped*\n- Tracking: [track it](https://t.example/abc_123)\n\n\
        ```\nETA: 2 days\n```\n\n> Tip: reply `STOP` to opt out.";
    assert_eq!(
        wa(markdown),
        "*Your order*\n\nHi *Ana*! Here is what I found:\n\n\
        • Status: _shipped_\n• Tracking: track it (https://t.example/abc_123)\n\n\
        ```\nETA: 2 days\n```\n\n> Tip: reply `STOP` to opt out."
    );
}

#[test]
fn arbitrary_input_never_panics() {
    let alphabet = [
        "*",
        "**",
        "_",
        "__",
        "~~",
        "`",
        "```",
        "[",
        "]",
        "(",
        ")",
        "!",
        "<",
        ">",
        "#",
        "-",
        "|",
        "\\",
        "\n",
        " ",
        "a",
        "é",
        "🎉",
        "👨‍👩‍👧‍👦",
        "https://x.io/_a_",
        "1.",
        ":---",
        "日",
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..next() % 60 {
            text.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
        }
        let out = to_whatsapp(&text);
        assert!(out.len() <= text.len() * 4 + 16, "{text:?} grew to {out:?}");
    }
}
