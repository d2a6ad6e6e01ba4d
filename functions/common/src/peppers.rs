//! The password pepper key ring held in the declared secret `password-peppers` (OWASP Password
//! Storage Cheat Sheet, "Peppering"): the one owner of its format, so the functions that hash
//! with it, `cargo xtask secret set --generate` and the rotation function read and write the
//! same thing.
//!
//! The value is JSON, `{"current":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}`: every key is
//! 32 random bytes, and each key has a short id that argon2 records in the PHC string of a hash
//! made with it (`keyid`, at most 8 bytes), so a hash verifies with the key that made it after
//! the ring moved on. `current` is the key new hashes use. Rotation adds a key and makes it
//! current ([`PepperRing::with_new_key`]); a key leaves the ring only when no stored hash uses
//! it any more (`cargo xtask secret keys password-peppers` counts them).
//!
//! Parsing is strict (an unknown field, a `current` that is not in `keys`, a key that is not 32
//! bytes of standard base64, a malformed id: all refused): a ring that half-parses would hash
//! with the wrong key or none.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::secrets::SecretValue;

/// The declared secret that holds the ring (`secrets = ["password-peppers"]` in the manifests of
/// the functions that hash passwords).
pub const SECRET: &str = "password-peppers";

/// The length of every pepper, in bytes (argon2's secret; 256 bits).
pub const KEY_LEN: usize = 32;

/// The longest key id: argon2's `keyid` parameter holds at most 8 bytes.
pub const MAX_ID_LEN: usize = 8;

/// The ring's value as stored: ids and base64 keys.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    current: String,
    keys: BTreeMap<String, String>,
}

/// A parsed key ring. Its `Debug` shows the ids only: a ring in a log line or an error names
/// its keys, never prints them.
#[derive(Clone, PartialEq, Eq)]
pub struct PepperRing {
    current: String,
    keys: BTreeMap<String, [u8; KEY_LEN]>,
}

impl fmt::Debug for PepperRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PepperRing")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a ring was refused; never holds a key.
fn refused(reason: String) -> ServiceError {
    ServiceError::internal(
        "reading the pepper ring",
        format!("secret `{SECRET}` is not a valid key ring: {reason}"),
    )
}

/// A key id: 1-8 characters of a-z and 0-9 (it goes into the PHC string, base64-encoded, and
/// into log lines).
fn check_id(id: &str) -> Result<(), ServiceError> {
    let valid = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(refused(format!(
            "key id `{}` is not 1-{MAX_ID_LEN} characters of a-z and 0-9",
            id.escape_debug()
        )))
    }
}

fn random_key() -> Result<[u8; KEY_LEN], ServiceError> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| ServiceError::internal("os rng", e.to_string()))?;
    Ok(key)
}

impl PepperRing {
    /// Parses the secret's value, refusing anything but a complete, well-formed ring.
    pub fn parse(value: &SecretValue) -> Result<Self, ServiceError> {
        // serde_json's error names a position and what it expected, never the input text.
        let stored: Stored = serde_json::from_str(value.expose())
            .map_err(|e| refused(format!("not the ring's JSON: {e}")))?;
        let mut keys = BTreeMap::new();
        for (id, encoded) in stored.keys {
            check_id(&id)?;
            let key = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
                .ok_or_else(|| {
                    refused(format!(
                        "key `{id}` is not {KEY_LEN} bytes in standard base64"
                    ))
                })?;
            keys.insert(id, key);
        }
        if !keys.contains_key(&stored.current) {
            return Err(refused(format!(
                "the current key `{}` is not in `keys`",
                stored.current.escape_debug()
            )));
        }
        Ok(Self {
            current: stored.current,
            keys,
        })
    }

    /// A new ring of one random key, `k1`, current: the value `secret set --generate` stores.
    pub fn generate() -> Result<Self, ServiceError> {
        Ok(Self {
            current: "k1".to_owned(),
            keys: BTreeMap::from([("k1".to_owned(), random_key()?)]),
        })
    }

    /// This ring plus a new random key, made current: one rotation. Its id is `k` and one more
    /// than the highest number of the `k<n>` ids, so an id is never reused while a hash might
    /// still name it. The old keys stay, so every stored hash keeps verifying.
    pub fn with_new_key(&self) -> Result<Self, ServiceError> {
        let next = self
            .keys
            .keys()
            .filter_map(|id| id.strip_prefix('k')?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let id = format!("k{next}");
        check_id(&id)?;
        let mut keys = self.keys.clone();
        keys.insert(id.clone(), random_key()?);
        Ok(Self { current: id, keys })
    }

    /// Refuses `next` as this ring's successor unless it holds every key of this one,
    /// unchanged: a key that left or changed would make every hash made with it unverifiable
    /// (the rotation function's `testSecret` step; keys leave only by `cargo xtask secret keys`
    /// showing no hash uses them, never by a rotation).
    pub fn check_successor(&self, next: &PepperRing) -> Result<(), ServiceError> {
        let lost: Vec<&str> = self
            .keys
            .iter()
            .filter(|(id, key)| next.keys.get(*id) != Some(key))
            .map(|(id, _)| id.as_str())
            .collect();
        if lost.is_empty() {
            Ok(())
        } else {
            Err(refused(format!(
                "as the next ring it drops or changes key(s) {} of the current one",
                lost.join(", ")
            )))
        }
    }

    /// The ring as the secret's value (JSON).
    pub fn to_value(&self) -> SecretValue {
        let stored = Stored {
            current: self.current.clone(),
            keys: self
                .keys
                .iter()
                .map(|(id, key)| (id.clone(), STANDARD.encode(key)))
                .collect(),
        };
        SecretValue::new(serde_json::to_string(&stored).expect("a map of strings serialises"))
    }

    /// The id of the key new hashes use.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// The key new hashes use.
    pub fn current_key(&self) -> &[u8; KEY_LEN] {
        &self.keys[&self.current]
    }

    /// The key with id `id`, if the ring holds it.
    pub fn key(&self, id: &str) -> Option<&[u8; KEY_LEN]> {
        self.keys.get(id)
    }

    /// Every key id, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_b64(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn parse(text: &str) -> Result<PepperRing, String> {
        PepperRing::parse(&SecretValue::new(text)).map_err(|e| crate::logging::error_chain(&e))
    }

    #[test]
    fn a_well_formed_ring_parses_and_round_trips() {
        let text = format!(
            r#"{{"current":"k2","keys":{{"k1":"{}","k2":"{}"}}}}"#,
            key_b64(1),
            key_b64(2)
        );
        let ring = parse(&text).unwrap();
        assert_eq!(ring.current_id(), "k2");
        assert_eq!(ring.current_key(), &[2; KEY_LEN]);
        assert_eq!(ring.key("k1"), Some(&[1; KEY_LEN]));
        assert_eq!(ring.key("k3"), None);
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(PepperRing::parse(&ring.to_value()).unwrap(), ring);
    }

    #[test]
    fn the_parser_refuses_anything_but_a_complete_ring() {
        let k = key_b64(7);
        let short = STANDARD.encode([7u8; 31]);
        let long = STANDARD.encode([7u8; 33]);
        let cases = [
            ("", "not the ring's JSON"),
            ("k1", "not the ring's JSON"),
            (r#"{"current":"k1"}"#, "not the ring's JSON"),
            (
                &format!(r#"{{"keys":{{"k1":"{k}"}}}}"#),
                "not the ring's JSON",
            ),
            (
                &format!(r#"{{"current":"k1","keys":{{"k1":"{k}"}},"extra":1}}"#),
                "not the ring's JSON",
            ),
            (
                &format!(r#"{{"current":"k2","keys":{{"k1":"{k}"}}}}"#),
                "the current key `k2` is not in `keys`",
            ),
            (r#"{"current":"k1","keys":{}}"#, "is not in `keys`"),
            (
                &format!(r#"{{"current":"k1","keys":{{"k1":"{short}"}}}}"#),
                "key `k1` is not 32 bytes",
            ),
            (
                &format!(r#"{{"current":"k1","keys":{{"k1":"{long}"}}}}"#),
                "key `k1` is not 32 bytes",
            ),
            (
                r#"{"current":"k1","keys":{"k1":"not base64!"}}"#,
                "key `k1` is not 32 bytes",
            ),
            (
                &format!(r#"{{"current":"K1","keys":{{"K1":"{k}"}}}}"#),
                "key id `K1` is not",
            ),
            (
                &format!(r#"{{"current":"k123456789","keys":{{"k123456789":"{k}"}}}}"#),
                "key id `k123456789` is not",
            ),
            (
                &format!(r#"{{"current":"","keys":{{"":"{k}"}}}}"#),
                "key id `` is not",
            ),
            (
                &format!(r#"{{"current":"k$","keys":{{"k$":"{k}"}}}}"#),
                "key id `k$` is not",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains("password-peppers"), "{error}");
            assert!(!error.contains(&k), "a key in the error: {error}");
        }
    }

    #[test]
    fn a_new_key_becomes_current_and_the_old_ones_stay() {
        let first = PepperRing::generate().unwrap();
        assert_eq!(first.current_id(), "k1");
        let second = first.with_new_key().unwrap();
        let third = second.with_new_key().unwrap();
        assert_eq!(third.current_id(), "k3");
        assert_eq!(third.ids().collect::<Vec<_>>(), ["k1", "k2", "k3"]);
        assert_eq!(third.key("k1"), first.key("k1"));
        assert_eq!(third.key("k2"), second.key("k2"));
        assert_ne!(third.current_key(), second.current_key());
        assert_ne!(second.current_key(), first.current_key());
    }

    #[test]
    fn a_successor_keeps_every_key() {
        let first = PepperRing::generate().unwrap();
        let second = first.with_new_key().unwrap();
        first.check_successor(&second).unwrap();
        first.check_successor(&first).unwrap();
        let error = |older: &PepperRing, newer: &PepperRing| {
            crate::logging::error_chain(&older.check_successor(newer).unwrap_err())
        };
        // Dropped: a fresh ring in place of a rotated one.
        let fresh = PepperRing::generate().unwrap();
        let dropped = error(&second, &fresh);
        assert!(
            dropped.contains("drops or changes key(s) k1, k2"),
            "{dropped}"
        );
        // Changed: same ids, another key.
        let changed = error(&first, &fresh.with_new_key().unwrap());
        assert!(changed.contains("key(s) k1 "), "{changed}");
        assert!(!changed.contains(&STANDARD.encode(first.current_key())));
    }

    #[test]
    fn a_ring_never_prints_a_key() {
        let ring = PepperRing::generate().unwrap();
        let shown = format!("{ring:?} {:?}", ring.to_value());
        let key = STANDARD.encode(ring.current_key());
        assert!(!shown.contains(&key), "{shown}");
        assert!(shown.contains("k1"), "{shown}");
    }
}
