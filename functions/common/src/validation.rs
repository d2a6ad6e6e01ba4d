//! Input rules for e-mail addresses, names and passwords.
//!
//! Validation returns the normalised value (lower-cased e-mail, trimmed name), so a value that
//! passed validation is the value that gets stored and compared. Each rule is also written as
//! the regular expression the OpenAPI document states ([`EMAIL_PATTERN`], [`name_pattern`]), so
//! a client can check input before sending it, and the contract fuzz test holds the two
//! together.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};

use crate::error::ServiceError;

/// Longest e-mail address SMTP can carry (RFC 5321 path limit minus the brackets).
pub const EMAIL_MAX_LEN: usize = 254;
/// Name length bounds, in characters.
pub const NAME_MIN_CHARS: usize = 1;
pub const NAME_MAX_CHARS: usize = 100;
/// Password length bounds, in characters. The upper bound caps hashing work per request.
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

fn invalid(field: &'static str, reason: impl Into<String>) -> ServiceError {
    ServiceError::Validation {
        field,
        reason: reason.into(),
    }
}

/// Characters of an unquoted local part (RFC 5322 `atext`), besides ASCII letters and digits.
const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";

/// [`email`]'s rule as a regular expression (without the length limit, which the document
/// states as `maxLength`).
pub const EMAIL_PATTERN: &str = concat!(
    r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~](?:\.?[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~])*",
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
);

/// Checks an e-mail address and returns it lower-cased, the form used as the uniqueness key.
/// Deliberately conservative (ASCII dot-atom local part, DNS host name): a sign-up address that
/// needs quoting is rarer than the support cost of accepting it. Surrounding spaces are an
/// error, not trimmed, so the rule is exactly [`EMAIL_PATTERN`] and a length.
pub fn email(raw: &str) -> Result<String, ServiceError> {
    let email = raw.to_ascii_lowercase();
    let bad = |reason: &str| invalid("email", reason);
    if email.is_empty() {
        return Err(bad("must not be empty"));
    }
    if email.len() > EMAIL_MAX_LEN {
        return Err(bad("must be at most 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(bad("must contain @"));
    };
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SYMBOLS.contains(c));
    if !local_ok {
        return Err(bad("the part before @ is not valid"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !domain_ok {
        return Err(bad("the domain is not valid"));
    }
    Ok(email)
}

/// Characters no name may hold: controls, and the invisible format characters (bidi overrides,
/// zero-width joiners and spaces, ...) that make one name look like another or reorder the
/// text around it; line and paragraph separators too.
fn forbidden_in_name(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Checks a display name and returns it trimmed: 1 to 100 characters after trimming, none of
/// them forbidden ([`forbidden_in_name`]).
pub fn name(raw: &str) -> Result<String, ServiceError> {
    if raw.chars().any(forbidden_in_name) {
        return Err(invalid(
            "name",
            "must not contain control or invisible formatting characters",
        ));
    }
    let name = raw.trim();
    let chars = name.chars().count();
    if !(NAME_MIN_CHARS..=NAME_MAX_CHARS).contains(&chars) {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// [`name`]'s rule as a regular expression: optional white space around 1 to 100 characters
/// that start and end with a non-space, none of them forbidden. The forbidden ranges are read
/// from the same Unicode tables the check uses.
pub fn name_pattern() -> String {
    let mut ranges = String::new();
    let mut start: Option<char> = None;
    let mut previous = '\0';
    // `\uXXXX` for the Basic Multilingual Plane (ECMA-262 and Python spell it alike), the
    // character itself above it.
    let escape = |c: char| match u16::try_from(u32::from(c)) {
        Ok(unit) => format!("\\u{unit:04X}"),
        Err(_) => c.to_string(),
    };
    let mut push = |from: char, to: char| {
        ranges.push_str(&escape(from));
        if from != to {
            ranges.push('-');
            ranges.push_str(&escape(to));
        }
    };
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        match (forbidden_in_name(c), start) {
            (true, None) => start = Some(c),
            (false, Some(from)) => {
                push(from, previous);
                start = None;
            }
            _ => {}
        }
        previous = c;
    }
    if let Some(from) = start {
        push(from, previous);
    }
    let inner = NAME_MAX_CHARS - 2;
    // White space around the name is trimmed, but a forbidden character is refused even there
    // (vertical tab and form feed are both).
    let space = format!(r"[^\S{ranges}]*");
    format!(r"^{space}[^\s{ranges}](?:[^{ranges}]{{0,{inner}}}[^\s{ranges}])?{space}$")
}

/// Checks a password's length. Passwords are not trimmed or normalised: every character counts.
pub fn password(raw: &str) -> Result<(), ServiceError> {
    let chars = raw.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(invalid("password", "must be 8 to 128 characters"));
    }
    Ok(())
}

/// Checks the length of a password given to prove who the caller is (`current_password`):
/// 1 to 128 characters, as the contract states, before any check that could end the session.
/// No lower bound of 8: a password set before that rule still proves its owner.
pub fn current_password(raw: &str) -> Result<(), ServiceError> {
    let chars = raw.chars().count();
    if !(1..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(invalid("current_password", "must be 1 to 128 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(email("Ada@Example.COM").unwrap(), "ada@example.com");
        assert!(
            email(" ada@example.com").is_err(),
            "spaces are refused, not trimmed"
        );
        assert_eq!(
            email("a.b+tag@sub.example.io").unwrap(),
            "a.b+tag@sub.example.io"
        );
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@localhost",
            "a@@example.com",
            "a b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example..com",
            "a@exa_mple.com",
            "ä@example.com",
            "a.@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(email(&long).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(101)).is_err());
        assert!(
            name(&"é".repeat(100)).is_ok(),
            "length is counted in characters"
        );
        assert!(name("a\u{0}b").is_err());
    }

    #[test]
    fn names_with_invisible_formatting_characters_are_rejected() {
        for bad in [
            "Ada\u{202E}ecalevol", // right-to-left override
            "Ad\u{200B}a",         // zero-width space
            "A\u{200D}da",         // zero-width joiner
            "\u{2066}Ada\u{2069}", // isolates
            "\u{FEFF}Ada",         // byte order mark
            "Ada\u{2028}Lovelace", // line separator
        ] {
            assert!(name(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(name("Zoë Ōkubo-Ng").unwrap(), "Zoë Ōkubo-Ng");
    }

    #[test]
    fn the_name_pattern_lists_the_forbidden_characters() {
        let pattern = name_pattern();
        assert!(pattern.contains("\\u0000-\\u001F"), "{pattern}");
        assert!(pattern.contains("\\u2028-\\u202E"), "{pattern}");
        assert!(pattern.contains("\\u200B-\\u200F"), "{pattern}");
        assert!(pattern.starts_with("^[^\\S\\u0000-"), "{pattern}");
    }

    #[test]
    fn passwords_are_bounded_in_characters() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"ü".repeat(128)).is_ok());
        assert!(password(&"x".repeat(129)).is_err());
    }
}
