//! The `X-Hub-Signature-256` check with arbitrary secrets, bodies and header strings: it never
//! panics, always accepts the signature `sign` produces, and accepts another header only when
//! it names the same digest (hex case, prefix case and surrounding whitespace are forgiven).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wagate::whatsapp::signature::{sign, verify};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret: &'a [u8],
    body: &'a [u8],
    header: Option<&'a str>,
}

fuzz_target!(|input: Input<'_>| {
    let correct = sign(input.secret, input.body);
    assert_eq!(verify(input.secret, input.body, Some(&correct)), Ok(()));
    let accepted = verify(input.secret, input.body, input.header).is_ok();
    let names_the_digest = input
        .header
        .is_some_and(|h| h.trim().to_ascii_lowercase() == correct);
    assert_eq!(accepted, names_the_digest, "header {:?}", input.header);
});
