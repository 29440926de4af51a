//! The reply splitter on arbitrary text and limits: never panics, every part is non-blank and
//! fits the limit, a text that fits comes back unchanged, and no text is lost (ignoring the
//! whitespace at the cuts; fence markers the splitter adds may only add characters).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wagate::whatsapp::split::split_message;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    limit: u16,
    text: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    // Limits below 8 cannot hold a closed fence; the splitter still has to cope with them.
    let limit = usize::from(input.limit % 4200);
    let parts = split_message(input.text, limit);
    let effective = limit.max(1);
    for part in &parts {
        assert!(!part.trim().is_empty(), "blank part in {parts:?}");
        assert!(
            part.chars().count() <= effective,
            "part over {limit}: {part:?}"
        );
    }
    if input.text.trim().is_empty() {
        assert!(parts.is_empty());
    } else if input.text.chars().count() <= effective {
        assert_eq!(parts, vec![input.text.to_owned()]);
    }
    // Every non-whitespace char of the text appears in the parts, in order.
    let mut joined = parts
        .iter()
        .flat_map(|p| p.chars())
        .filter(|c| !c.is_whitespace());
    for c in input.text.chars().filter(|c| !c.is_whitespace()) {
        assert!(joined.any(|j| j == c), "{c:?} lost from {:?}", input.text);
    }
});
