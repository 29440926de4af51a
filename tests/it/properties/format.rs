//! The formatter never panics, and leaves the content of code spans and fences unchanged.

use proptest::prelude::*;
use wagate::whatsapp::format::to_whatsapp;

/// A line of code: printable ASCII without backticks or pipes (a pipe would split a table cell
/// before the code span is seen).
const CODE_LINE: &str = "[ !-_a-{}~]{0,40}";
/// A code span's content, the same chars without a leading or trailing space (CommonMark strips
/// one of each from `` ` a ` ``).
const CODE_SPAN: &str = "[!-_a-{}~]([ !-_a-{}~]{0,18}[!-_a-{}~])?";

#[derive(Debug, Clone)]
enum Block {
    /// A line of inline Markdown, with the contents of the code spans it holds.
    Line(String, Vec<String>),
    /// A fenced block's content lines.
    Fence(String, Vec<String>),
}

fn inline_piece() -> impl Strategy<Value = (String, Option<String>)> {
    prop_oneof![
        5 => "[a-zA-Z]{1,10}".prop_map(|w| (w, None)),
        2 => prop::sample::select(vec![
            "*bold*", "**strong**", "_it_", "~~gone~~", "[a link](https://example.com/x)",
            "<https://example.com>", "https://example.com/a_b_c", "2 * 3", "snake_case", "\\*",
            "!", "#tag", "😀", "ação",
        ]).prop_map(|p| (p.to_owned(), None)),
        2 => CODE_SPAN.prop_map(|c| (format!("`{c}`"), Some(c))),
    ]
}

fn line() -> impl Strategy<Value = Block> {
    let prefix = prop::sample::select(vec!["", "", "", "# ", "### ", "- ", "* ", "1. ", "> "]);
    (prefix, prop::collection::vec(inline_piece(), 1..10)).prop_map(|(prefix, pieces)| {
        let text: Vec<String> = pieces.iter().map(|(p, _)| p.clone()).collect();
        let codes = pieces.into_iter().filter_map(|(_, c)| c).collect();
        Block::Line(format!("{prefix}{}", text.join(" ")), codes)
    })
}

fn fence() -> impl Strategy<Value = Block> {
    let content = prop::collection::vec(CODE_LINE, 1..8);
    ("[a-z]{0,6}", content).prop_map(|(lang, lines)| Block::Fence(lang, lines))
}

fn document() -> impl Strategy<Value = Vec<Block>> {
    prop::collection::vec(prop_oneof![3 => line(), 1 => fence()], 1..12)
}

fn render(blocks: &[Block]) -> String {
    let texts: Vec<String> = blocks
        .iter()
        .map(|b| match b {
            Block::Line(text, _) => text.clone(),
            Block::Fence(lang, lines) => format!("```{lang}\n{}\n```", lines.join("\n")),
        })
        .collect();
    texts.join("\n\n")
}

proptest! {
    #![proptest_config(super::cases(300))]

    #[test]
    fn the_formatter_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = to_whatsapp(&text);
    }

    #[test]
    fn the_formatter_never_panics_on_markdown_soup(
        pieces in prop::collection::vec(prop::sample::select(vec![
            "*", "**", "_", "__", "~", "~~", "`", "```", "~~~", "[", "]", "(", ")", "<", ">",
            "!", "#", "|", "---", "\\", "\n", "\n\n", " ", "  ", "\t", "1.", "- ", "> ", "|-|",
            "http://", "www.", "a", "word", "😀", "\u{301}", "é",
        ]), 0..120)
    ) {
        let _ = to_whatsapp(&pieces.concat());
    }

    #[test]
    fn code_spans_and_fences_keep_their_content(blocks in document()) {
        let markdown = render(&blocks);
        let out = to_whatsapp(&markdown);
        for block in &blocks {
            match block {
                Block::Line(_, codes) => {
                    for code in codes {
                        prop_assert!(out.contains(&format!("`{code}`")), "`{}` changed in {:?}", code, out);
                    }
                }
                Block::Fence(_, lines) if lines.iter().any(|l| !l.trim().is_empty()) => {
                    let kept = format!("```\n{}\n```", lines.join("\n"));
                    prop_assert!(out.contains(&kept), "code block changed: {:?} in {:?}", kept, out);
                }
                Block::Fence(..) => {}
            }
        }
    }
}
