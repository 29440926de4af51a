//! The check-digit algorithms that tell a real identifier from a number that merely looks like
//! one: Luhn for payment cards, ISO 7064 mod-97 for IBANs.

/// True when the ASCII digits of `digits` (other characters ignored) pass the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    let mut count = 0usize;
    for (i, d) in digits
        .bytes()
        .rev()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        let value = if i % 2 == 1 {
            let doubled = d * 2;
            if doubled > 9 {
                doubled - 9
            } else {
                doubled
            }
        } else {
            d
        };
        sum += value;
        count += 1;
    }
    count > 0 && sum.is_multiple_of(10)
}

/// True when `candidate` (spaces ignored) is a well-formed IBAN whose mod-97 checksum is 1.
pub fn iban_valid(candidate: &str) -> bool {
    // At most 34 chars: a stack buffer, no allocation on this hot path.
    let mut buffer = [0u8; 34];
    let mut len = 0;
    for b in candidate.bytes().filter(|b| *b != b' ') {
        if len == buffer.len() {
            return false;
        }
        buffer[len] = b;
        len += 1;
    }
    if len < 15 {
        return false;
    }
    let (head, bban) = buffer[..len].split_at(4);
    let well_formed = head[..2].iter().all(u8::is_ascii_uppercase)
        && head[2..].iter().all(u8::is_ascii_digit)
        && bban
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return false;
    }
    // The check moves the country code and check digits to the end and reads letters as 10..35;
    // folding digit by digit keeps the running remainder small.
    let mut remainder = 0u32;
    for &b in bban.iter().chain(head.iter()) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        let factor = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * factor + value) % 97;
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_test_card_numbers_pass_luhn() {
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(luhn_valid(card), "{card} should pass Luhn");
        }
    }

    #[test]
    fn a_changed_digit_fails_luhn() {
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("1234567812345678"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn published_example_ibans_pass_mod_97() {
        for iban in [
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "FR14 2004 1010 0505 0001 3M02 606",
            "NL91 ABNA 0417 1643 00",
        ] {
            assert!(iban_valid(iban), "{iban} should be valid");
        }
    }

    #[test]
    fn an_iban_with_a_wrong_check_digit_fails() {
        assert!(!iban_valid("DE88 3704 0044 0532 0130 00"));
        assert!(!iban_valid("GB82 WEST 1234 5698 7654 33"));
        assert!(!iban_valid("DE89"));
        assert!(!iban_valid("de89 3704 0044 0532 0130 00"));
    }
}
