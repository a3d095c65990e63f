//! `uuid` values, kept as their canonical text
//! (`a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11`).

/// The canonical text of a UUID in any form PostgreSQL reads: upper or
/// lower case, in braces, with or without a hyphen after any group of four
/// digits. `None` when `s` is not a UUID.
pub fn canonical(s: &str) -> Option<String> {
    let inner = match s.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => s,
    };
    let mut digits = String::with_capacity(32);
    let mut since_hyphen = 0;
    for (i, c) in inner.chars().enumerate() {
        if c == '-' {
            // Only between groups of four digits.
            if i == 0 || since_hyphen == 0 || !digits.len().is_multiple_of(4) {
                return None;
            }
            since_hyphen = 0;
            continue;
        }
        if !c.is_ascii_hexdigit() {
            return None;
        }
        digits.push(c.to_ascii_lowercase());
        since_hyphen += 1;
    }
    if digits.len() != 32 || inner.ends_with('-') {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &digits[0..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32]
    ))
}

/// The 16 bytes of a canonical UUID text (the binary wire format).
pub fn bytes(canonical_text: &str) -> Option<[u8; 16]> {
    let hex: String = canonical_text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The canonical text of 16 UUID bytes.
pub fn from_bytes(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    canonical(&hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_postgres_reads() {
        let c = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for form in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        ] {
            assert_eq!(canonical(form).as_deref(), Some(c), "{form}");
        }
        for bad in [
            "",
            "abc",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
        assert_eq!(from_bytes(&bytes(c).unwrap()).as_deref(), Some(c));
    }
}
