//! `X-Hub-Signature-256`: Meta signs every webhook POST with HMAC-SHA256 keyed by the app secret.
//!
//! The MAC covers the exact bytes on the wire. Meta escapes non-ASCII text as `\uXXXX` (and `/`
//! as `\/`), so anything re-serialised from parsed JSON no longer matches: verify the raw body
//! before parsing it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header value starts with this, then 64 hex digits.
const PREFIX: &str = "sha256=";

/// Length of a SHA-256 digest in bytes.
const DIGEST_LEN: usize = 32;

/// Why a webhook body was not accepted as signed by Meta. Never carries the secret or a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request had no `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)")]
    Malformed,
    /// The header is well formed but does not match the body under the app secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against `body`, in constant time.
pub fn verify(app_secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let claimed = decode_header(header)?;
    mac_of(app_secret, body)
        .verify_slice(&claimed)
        .map_err(|_| SignatureError::Mismatch)
}

/// The full header value (`sha256=<lowercase hex>`) Meta would send for `body`.
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    let digest = mac_of(app_secret, body).finalize().into_bytes();
    format!("{PREFIX}{}", hex::encode(digest))
}

/// The digest bytes a header claims. Hex digits in either case are accepted; the prefix too,
/// since nothing is gained by rejecting `SHA256=` from a proxy that rewrote it.
fn decode_header(header: &str) -> Result<Vec<u8>, SignatureError> {
    let header = header.trim();
    let hex_digits = header
        .get(..PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| header.get(PREFIX.len()..))
        .ok_or(SignatureError::Malformed)?;
    let digest = hex::decode(hex_digits).map_err(|_| SignatureError::Malformed)?;
    if digest.len() != DIGEST_LEN {
        return Err(SignatureError::Malformed);
    }
    Ok(digest)
}

fn mac_of(app_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(app_secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer vector from `/work/shared/corpus/vectors/signature_unicode_escaped.json`,
    /// kept here so the test stands alone. The body holds literal `\uXXXX` sequences, as on the wire.
    const VECTOR_SECRET: &str = "YOUR_APP_SECRET";
    const VECTOR_HEADER: &str =
        "sha256=0363007aabdf1ab579f35936651a460fb5fa1aaf40df98b1264446b72cc96688";
    const VECTOR_WIRE_BODY: &str = r"Let's pretend this body is equal to the message object and can handle unicode characters like \u307f\u3069\u308a\u3044\u308d and J'ai mang\u00e9 des p\u00e2tes";
    const VECTOR_DECODED_BODY: &str = "Let's pretend this body is equal to the message object and can handle unicode characters like みどりいろ and J'ai mangé des pâtes";

    const VECTOR_FILE: &str = "/work/shared/corpus/vectors/signature_unicode_escaped.json";

    #[test]
    fn the_escaped_wire_bytes_match_metas_signature() {
        assert_eq!(
            verify(
                VECTOR_SECRET.as_bytes(),
                VECTOR_WIRE_BODY.as_bytes(),
                Some(VECTOR_HEADER)
            ),
            Ok(())
        );
        assert_eq!(
            sign(VECTOR_SECRET.as_bytes(), VECTOR_WIRE_BODY.as_bytes()),
            VECTOR_HEADER
        );
    }

    #[test]
    fn the_decoded_text_does_not_match_metas_signature() {
        assert_eq!(
            verify(
                VECTOR_SECRET.as_bytes(),
                VECTOR_DECODED_BODY.as_bytes(),
                Some(VECTOR_HEADER)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_shared_vector_file_verifies_when_present() {
        let Ok(text) = std::fs::read_to_string(VECTOR_FILE) else {
            eprintln!("note: {VECTOR_FILE} not found, skipping (the inline copy is tested above)");
            return;
        };
        let vector: serde_json::Value = serde_json::from_str(&text).expect("vector file is JSON");
        let field = |name: &str| vector[name].as_str().expect(name).to_owned();
        let secret = field("app_secret");
        let header = field("header_X-Hub-Signature-256");
        let wire = field("raw_body_as_sent_on_wire");
        let decoded = field("decoded_text_(NOT_what_is_signed)");
        assert!(wire.contains(r"\u307f"), "the wire body keeps its escapes");
        assert_eq!(
            verify(secret.as_bytes(), wire.as_bytes(), Some(&header)),
            Ok(())
        );
        assert_eq!(
            verify(secret.as_bytes(), decoded.as_bytes(), Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rfc_4231_test_case_2_is_reproduced() {
        // RFC 4231 section 4.3: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let header = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(header, format!("sha256={expected}"));
        assert_eq!(
            verify(b"Jefe", b"what do ya want for nothing?", Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn rfc_4231_test_case_6_with_a_key_longer_than_a_block_is_reproduced() {
        // RFC 4231 section 4.7: a 131-byte key of 0xaa is hashed before use.
        let key = [0xaa_u8; 131];
        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let expected = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
        assert_eq!(sign(&key, data), format!("sha256={expected}"));
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let header = VECTOR_HEADER
            .to_ascii_uppercase()
            .replacen("SHA256=", "sha256=", 1);
        assert_eq!(
            verify(
                VECTOR_SECRET.as_bytes(),
                VECTOR_WIRE_BODY.as_bytes(),
                Some(&header)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_missing_header_is_refused_as_missing() {
        assert_eq!(verify(b"secret", b"{}", None), Err(SignatureError::Missing));
    }

    #[test]
    fn headers_without_the_prefix_or_with_bad_hex_are_malformed() {
        let good = sign(b"secret", b"{}");
        let digits = good.trim_start_matches(PREFIX).to_owned();
        let bad_headers = [
            String::new(),
            digits.clone(),
            format!("sha1={digits}"),
            format!("sha256:{digits}"),
            format!("sha256=g{}", &digits[1..]),
            "sha256=".to_owned(),
            "sha256=é".to_owned(),
            "é".to_owned(),
        ];
        for header in bad_headers {
            assert_eq!(
                verify(b"secret", b"{}", Some(&header)),
                Err(SignatureError::Malformed),
                "header {header:?}"
            );
        }
    }

    #[test]
    fn a_truncated_or_extended_digest_is_malformed() {
        let good = sign(b"secret", b"{}");
        let truncated = &good[..good.len() - 2];
        let extended = format!("{good}00");
        assert_eq!(
            verify(b"secret", b"{}", Some(truncated)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"secret", b"{}", Some(&extended)),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn a_wrong_secret_or_a_changed_body_is_a_mismatch() {
        let header = sign(b"secret", br#"{"object":"whatsapp_business_account"}"#);
        assert_eq!(
            verify(
                b"other secret",
                br#"{"object":"whatsapp_business_account"}"#,
                Some(&header)
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"secret",
                br#"{"object":"whatsapp_business_account" }"#,
                Some(&header)
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn errors_do_not_reveal_the_expected_digest() {
        let expected = sign(b"secret", b"{}");
        let wrong = sign(b"secret", b"[]");
        let err = verify(b"secret", b"{}", Some(&wrong)).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(expected.trim_start_matches(PREFIX)));
        assert!(!shown.contains("secret"));
    }
}
