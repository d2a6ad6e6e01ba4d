//! The pagination cursor of `GET /users`: the `LastEvaluatedKey` of a `by-kind` query, written
//! as `<created_at>_<user id>` (the only two values of the key that vary).
//!
//! Clients can send anything, so decoding checks the text against exactly the shape the
//! OpenAPI document states ([`Cursor::PATTERN`]); anything else is a 400 before DynamoDB sees it.
//! Every text of that shape is a position in the list (DynamoDB starts after the key whether
//! or not an item has it), so the document's rule and the check are the same rule.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::records::{USER_KIND, user_key};

/// A position in the user list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pk: String,
    kind: String,
    created_at: String,
}

impl Cursor {
    /// The text's shape, as the OpenAPI document states it: a canonical `created_at`, `_`,
    /// and a user id in lower-case hyphenated hex.
    pub const PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

    /// Parses and checks a cursor from a query string.
    pub fn decode(text: &str) -> Result<Self, ServiceError> {
        let (created_at, id) = text.split_once('_').ok_or(ServiceError::InvalidCursor)?;
        let id_ok = id.len() == 36
            && id.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        let id = Uuid::parse_str(id)
            .ok()
            .filter(|_| id_ok)
            .ok_or(ServiceError::InvalidCursor)?;
        if !Timestamp::is_canonical_rfc3339(created_at) {
            return Err(ServiceError::InvalidCursor);
        }
        Ok(Self {
            pk: user_key(id),
            kind: USER_KIND.to_owned(),
            created_at: created_at.to_owned(),
        })
    }

    /// The text handed to clients as `next_cursor`.
    pub fn encode(&self) -> String {
        let id = self.pk.strip_prefix("USER#").unwrap_or(&self.pk);
        format!("{}_{id}", self.created_at)
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
        let good = sample().encode();
        let (created_at, id) = good.split_once('_').unwrap();
        for bad in [
            String::new(),
            "0".to_owned(),
            "!!!".to_owned(),
            format!("{created_at}_{}", id.to_uppercase()),
            format!("{created_at}_{}", id.replace('-', "")),
            format!("{created_at}_x{}", &id[1..]),
            format!("yesterday_{id}"),
            format!("{created_at}{id}"),
            format!("{good}_"),
            "A".repeat(600),
        ] {
            assert!(
                matches!(Cursor::decode(&bad), Err(ServiceError::InvalidCursor)),
                "{bad:?} was accepted"
            );
        }
    }
}
