//! Session tokens: 256 bits from the OS RNG, sent base64url-encoded, stored only as SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// Random bytes per token; 256 bits makes guessing hopeless and a fast hash (no salt, no
/// stretching) safe for storage.
pub const TOKEN_BYTES: usize = 32;
/// Length of the base64url text of a token (no padding).
pub const TOKEN_CHARS: usize = 43;

/// A bearer token as the client holds it. `Debug` is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// The SHA-256 of a token in lowercase hex: the sessions table's key.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl SessionToken {
    /// A fresh token from the OS RNG.
    pub fn generate() -> Result<Self, ServiceError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| ServiceError::internal("os rng", e.to_string()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts only text this service could have issued, so garbage never costs a DynamoDB read.
    pub fn parse(text: &str) -> Option<Self> {
        let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
        (text.len() == TOKEN_CHARS && decoded.len() == TOKEN_BYTES).then(|| Self(text.to_owned()))
    }

    /// Extracts the token from an `Authorization: Bearer <token>` header value.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, token) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Self::parse(token.trim())
    }

    /// The token text, to hand to the client exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The storage key for this token.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.as_bytes())
    }
}

impl TokenHash {
    /// The SHA-256 of `bytes` in lowercase hex.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        Self(hex)
    }

    /// Wraps a stored hash read back from the table.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex text, for DynamoDB keys only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url() {
        let token = SessionToken::generate().unwrap();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        assert_ne!(token, SessionToken::generate().unwrap());
    }

    #[test]
    fn hash_is_lowercase_sha256_hex() {
        let token = SessionToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        // sha256 of the 43 ASCII 'A's
        let expected = format!("{:x}", Sha256::digest(token.expose().as_bytes()));
        assert_eq!(token.hash().as_str(), expected);
        assert_eq!(token.hash().as_str().len(), 64);
    }

    #[test]
    fn bearer_parsing_is_strict() {
        let token = SessionToken::generate().unwrap();
        let header = format!("Bearer {}", token.expose());
        assert_eq!(
            SessionToken::from_authorization(&header),
            Some(token.clone())
        );
        let lower = format!("bearer {}", token.expose());
        assert_eq!(
            SessionToken::from_authorization(&lower),
            Some(token.clone())
        );
        assert_eq!(SessionToken::from_authorization(token.expose()), None);
        assert_eq!(SessionToken::from_authorization("Basic dXNlcjpwYXNz"), None);
        assert_eq!(SessionToken::from_authorization("Bearer short"), None);
        assert_eq!(
            SessionToken::from_authorization("Bearer !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"),
            None
        );
    }

    #[test]
    fn debug_is_redacted() {
        let token = SessionToken::generate().unwrap();
        assert!(!format!("{token:?}").contains(token.expose()));
        assert!(!format!("{:?}", token.hash()).contains(token.hash().as_str()));
    }
}
