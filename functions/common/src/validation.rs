//! Input rules for e-mail addresses, names and passwords.
//!
//! Validation returns the normalised value (lower-cased e-mail, trimmed name), so a value that
//! passed validation is the value that gets stored and compared.

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

/// Checks an e-mail address and returns it trimmed and lower-cased, the form used as the
/// uniqueness key. Deliberately conservative (ASCII dot-atom local part, DNS host name): a
/// sign-up address that needs quoting is rarer than the support cost of accepting it.
pub fn email(raw: &str) -> Result<String, ServiceError> {
    let email = raw.trim().to_ascii_lowercase();
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
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
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

/// Checks a display name and returns it trimmed.
pub fn name(raw: &str) -> Result<String, ServiceError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if !(NAME_MIN_CHARS..=NAME_MAX_CHARS).contains(&chars) {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// Checks a password's length. Passwords are not trimmed or normalised: every character counts.
pub fn password(raw: &str) -> Result<(), ServiceError> {
    let chars = raw.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        return Err(invalid("password", "must be 8 to 128 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        assert_eq!(email("  Ada@Example.COM ").unwrap(), "ada@example.com");
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
    fn passwords_are_bounded_in_characters() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(password(&"ü".repeat(128)).is_ok());
        assert!(password(&"x".repeat(129)).is_err());
    }
}
