//! The signature check accepts exactly the correct signature and never panics on any header.

use proptest::prelude::*;
use wagate::whatsapp::signature::{sign, verify, SignatureError};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// Headers near the correct one: each hex digit in turn, the prefix, the length, spacing.
fn near_misses(correct: &str) -> Vec<String> {
    let mut headers = vec![
        correct[..correct.len() - 1].to_owned(),
        format!("{correct}0"),
        correct.replacen("sha256=", "sha1=", 1),
        correct.replacen("sha256=", "", 1),
        correct.replacen('=', ":", 1),
        format!("{correct},{correct}"),
    ];
    for i in "sha256=".len()..correct.len() {
        let mut flipped = correct.to_owned().into_bytes();
        flipped[i] = if flipped[i] == b'0' { b'1' } else { b'0' };
        headers.push(String::from_utf8(flipped).unwrap_or_default());
    }
    headers
}

proptest! {
    #![proptest_config(super::cases(200))]

    #[test]
    fn the_correct_signature_is_accepted_and_every_near_miss_refused(
        secret in bytes(),
        body in bytes(),
    ) {
        let correct = sign(&secret, &body);
        prop_assert_eq!(verify(&secret, &body, Some(&correct)), Ok(()));
        // Hex case, prefix case and surrounding whitespace carry no meaning: still accepted.
        prop_assert_eq!(verify(&secret, &body, Some(&correct.to_ascii_uppercase())), Ok(()));
        prop_assert_eq!(verify(&secret, &body, Some(&format!(" {correct}\t"))), Ok(()));
        for header in near_misses(&correct) {
            prop_assert!(verify(&secret, &body, Some(&header)).is_err(), "accepted {:?}", header);
        }
        prop_assert_eq!(verify(&secret, &body, None), Err(SignatureError::Missing));
    }

    #[test]
    fn a_changed_body_or_secret_is_a_mismatch(
        secret in bytes(),
        body in bytes(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let correct = sign(&secret, &body);
        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(bit);
        } else {
            let i = flip.index(changed.len());
            changed[i] ^= 1 << bit;
        }
        prop_assert_eq!(verify(&secret, &changed, Some(&correct)), Err(SignatureError::Mismatch));
        let mut other_secret = secret.clone();
        // HMAC pads short keys with zeros, so a key with a zero byte appended is the same key.
        other_secret.push(1 << bit);
        prop_assert_eq!(verify(&other_secret, &body, Some(&correct)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn an_arbitrary_header_is_accepted_only_when_it_names_the_digest(
        secret in bytes(),
        body in bytes(),
        header in prop_oneof![
            "\\PC{0,80}",
            "(sha256|SHA256|sha1)?=?[0-9a-fA-F]{0,70}",
            "\\s{0,2}sha256=[0-9a-f]{64}\\s{0,2}",
        ],
    ) {
        let correct = sign(&secret, &body);
        let accepted = verify(&secret, &body, Some(&header)).is_ok();
        prop_assert_eq!(accepted, header.trim().eq_ignore_ascii_case(&correct));
    }
}
