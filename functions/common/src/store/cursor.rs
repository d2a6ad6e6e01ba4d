//! The opaque pagination cursor of `GET /users`: base64url of the `LastEvaluatedKey` as JSON.
//!
//! Clients can send anything, so decoding checks that the key has exactly the shape a
//! `by-kind` query returns; anything else is a 400 before DynamoDB sees it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::records::USER_KIND;

/// Longest cursor text accepted; a real one is about 150 characters.
const MAX_CURSOR_CHARS: usize = 512;

/// A position in the user list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pk: String,
    kind: String,
    created_at: String,
}

impl Cursor {
    /// Parses and checks a cursor from a query string.
    pub fn decode(text: &str) -> Result<Self, ServiceError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(ServiceError::InvalidCursor);
        }
        let json = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| ServiceError::InvalidCursor)?;
        let cursor: Cursor =
            serde_json::from_slice(&json).map_err(|_| ServiceError::InvalidCursor)?;
        let id_ok = cursor
            .pk
            .strip_prefix("USER#")
            .is_some_and(|id| Uuid::parse_str(id).is_ok());
        if !id_ok
            || cursor.kind != USER_KIND
            || !Timestamp::is_canonical_rfc3339(&cursor.created_at)
        {
            return Err(ServiceError::InvalidCursor);
        }
        Ok(cursor)
    }

    /// The text handed to clients as `next_cursor`.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a struct of strings always serialises");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads DynamoDB's `LastEvaluatedKey`; `None` if it lacks an attribute the index has.
    pub(crate) fn from_last_evaluated_key(key: &HashMap<String, AttributeValue>) -> Option<Self> {
        let text = |name: &str| key.get(name)?.as_s().ok().cloned();
        Some(Self {
            pk: text("pk")?,
            kind: text("kind")?,
            created_at: text("created_at")?,
        })
    }

    /// The `ExclusiveStartKey` to continue the query from.
    pub(crate) fn exclusive_start_key(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("kind".to_owned(), AttributeValue::S(self.kind.clone())),
            (
                "created_at".to_owned(),
                AttributeValue::S(self.created_at.clone()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            pk: format!("USER#{}", Uuid::new_v4()),
            kind: "user".into(),
            created_at: Timestamp::now().to_rfc3339(),
        }
    }

    #[test]
    fn round_trips() {
        let cursor = sample();
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        let key = cursor.exclusive_start_key();
        assert_eq!(Cursor::from_last_evaluated_key(&key).unwrap(), cursor);
    }

    #[test]
    fn rejects_garbage() {
        let encode = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let good = sample();
        for bad in [
            "".to_owned(),
            "!!!".to_owned(),
            encode("not json"),
            encode("[]"),
            encode(r#"{"pk":"USER#x","kind":"user","created_at":"2026-01-01T00:00:00.000000Z"}"#),
            encode(&format!(
                r#"{{"pk":"{}","kind":"email","created_at":"{}"}}"#,
                good.pk, good.created_at
            )),
            encode(&format!(
                r#"{{"pk":"{}","kind":"user","created_at":"yesterday"}}"#,
                good.pk
            )),
            encode(&format!(
                r#"{{"pk":"{}","kind":"user","created_at":"{}","extra":1}}"#,
                good.pk, good.created_at
            )),
            "A".repeat(600),
        ] {
            assert!(
                matches!(Cursor::decode(&bad), Err(ServiceError::InvalidCursor)),
                "{bad:?} was accepted"
            );
        }
    }
}
