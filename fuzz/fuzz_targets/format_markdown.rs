//! Markdown to WhatsApp formatting on arbitrary text: never panics, and the lines inside a
//! fenced code block that opens the text come out verbatim.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wagate::whatsapp::format::to_whatsapp;

fuzz_target!(|markdown: &str| {
    let out = to_whatsapp(markdown);
    // A text that is one closed ``` block: its non-blank lines survive unchanged.
    if let Some(body) = markdown
        .strip_prefix("```\n")
        .and_then(|rest| rest.strip_suffix("\n```"))
    {
        let plain = !body.lines().any(|l| {
            let t = l.trim();
            t.starts_with("```") || t.starts_with("~~~")
        });
        if plain && !body.trim().is_empty() {
            for line in body.lines() {
                assert!(out.contains(line), "code line {line:?} lost in {out:?}");
            }
        }
    }
});
