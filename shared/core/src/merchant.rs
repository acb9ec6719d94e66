//! The merchant's account data (POLICY A1, E3): business name, optional phone and GSTIN, and no more.

use serde::Serialize;

/// A field that failed validation, reported back as a 422 with every problem at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: &'static str,
}

const GSTIN_ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// An Indian GST identification number: 2-digit state code, the holder's PAN (5 letters, 4 digits,
/// 1 letter), the registration number within that PAN, `Z`, and a base-36 check character.
pub fn validate_gstin(raw: &str) -> Result<String, &'static str> {
    let g = raw.trim().to_ascii_uppercase();
    let b = g.as_bytes();
    if b.len() != 15 {
        return Err("a GSTIN has 15 characters");
    }
    let state: u32 = g[0..2]
        .parse()
        .map_err(|_| "a GSTIN starts with a 2-digit state code")?;
    if !(1..=38).contains(&state) && state != 97 && state != 99 {
        return Err("unknown state code");
    }
    let pan_ok = b[2..7].iter().all(u8::is_ascii_uppercase)
        && b[7..11].iter().all(u8::is_ascii_digit)
        && b[11].is_ascii_uppercase();
    if !pan_ok {
        return Err("characters 3 to 12 must be a PAN");
    }
    if !(b[12].is_ascii_digit() && b[12] != b'0' || b[12].is_ascii_uppercase()) {
        return Err("character 13 must be 1-9 or A-Z");
    }
    if b[13] != b'Z' {
        return Err("character 14 must be Z");
    }
    if gstin_check_char(&b[..14]) != Some(b[14]) {
        return Err("check digit does not match");
    }
    Ok(g)
}

/// The GSTN check character: alternate weights 1 and 2 over base-36 values, digits of each product
/// summed in base 36.
fn gstin_check_char(first14: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in first14.iter().enumerate() {
        let v = GSTIN_ALPHABET.iter().position(|a| a == c)? as u32;
        let p = v * if i % 2 == 0 { 1 } else { 2 };
        sum += p / 36 + p % 36;
    }
    Some(GSTIN_ALPHABET[((36 - sum % 36) % 36) as usize])
}

/// A phone number in international form: `+`, country code and number, 8 to 15 digits in all
/// (ITU-T E.164). Spaces and dashes are tolerated on input and dropped.
pub fn validate_phone(raw: &str) -> Result<String, &'static str> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact
        .strip_prefix('+')
        .ok_or("a phone number starts with + and the country code")?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a phone number has 8 to 15 digits");
    }
    Ok(compact)
}

/// A business name as the merchant types it: trimmed, not empty, at most 200 characters.
pub fn validate_business_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("the business name is required");
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("the business name has at most 200 printable characters");
    }
    Ok(name.to_owned())
}

/// A merchant's profile as the API accepts it, validated together so every problem is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantProfile {
    pub name: String,
    pub phone: Option<String>,
    pub gstin: Option<String>,
}

impl MerchantProfile {
    pub fn validate(
        name: &str,
        phone: Option<&str>,
        gstin: Option<&str>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut check = |field, r: Result<String, &'static str>| match r {
            Ok(v) => Some(v),
            Err(reason) => {
                errors.push(FieldError { field, reason });
                None
            }
        };
        let name = check("name", validate_business_name(name));
        let phone = phone.map(|p| check("phone", validate_phone(p)));
        let gstin = gstin.map(|g| check("gstin", validate_gstin(g)));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(MerchantProfile {
            name: name.unwrap_or_default(),
            phone: phone.flatten(),
            gstin: gstin.flatten(),
        })
    }
}

/// E-mail addresses are compared case-insensitively: invitations match the address the user signs
/// in with.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let e = raw.trim().to_ascii_lowercase();
    let (local, domain) = e.split_once('@').ok_or("an e-mail address has an @")?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@');
    ok.then_some(e).ok_or("not a valid e-mail address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_a1_gstin_is_validated_with_its_check_digit() {
        assert_eq!(
            validate_gstin("27aapfu0939f1zv"),
            Ok("27AAPFU0939F1ZV".into())
        );
        // one character changed: the check digit no longer matches
        assert_eq!(
            validate_gstin("27AAPFU0939F1ZW"),
            Err("check digit does not match")
        );
        assert!(validate_gstin("27AAPFU0939F1Z").is_err());
        assert!(validate_gstin("00AAPFU0939F1ZV").is_err());
        assert!(validate_gstin("27AAPF10939F1ZV").is_err());
    }

    #[test]
    fn policy_a1_profile_reports_every_bad_field() {
        let err = MerchantProfile::validate(" ", Some("12345"), Some("XX")).unwrap_err();
        let fields: Vec<_> = err.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["name", "phone", "gstin"]);
        let ok = MerchantProfile::validate(" Acme ", Some("+91 98765-43210"), None).unwrap();
        assert_eq!(ok.name, "Acme");
        assert_eq!(ok.phone.as_deref(), Some("+919876543210"));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email(" A@Example.COM "),
            Ok("a@example.com".into())
        );
        assert!(normalize_email("no-at-sign").is_err());
        assert!(normalize_email("a@b").is_err());
        assert!(normalize_email("a b@c.com").is_err());
    }
}
