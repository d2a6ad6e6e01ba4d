//! The stored records and their DynamoDB item shapes (the contract's schema, mapped with
//! `serde_dynamo`). Item structs are the only place attribute names are spelled.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::token::TokenHash;

/// `kind` of user items; the `by-kind` index is queried with it.
pub const USER_KIND: &str = "user";
/// `kind` of e-mail uniqueness items.
pub const EMAIL_KIND: &str = "email";

/// Partition key of a user item.
pub fn user_key(id: Uuid) -> String {
    format!("USER#{id}")
}

/// Partition key of an e-mail uniqueness item; `email` must already be normalised.
pub fn email_key(email: &str) -> String {
    format!("EMAIL#{email}")
}

/// Key of a user's log-out-everywhere marker in the sessions table. The marker lives
/// beside the sessions (not on the user item) so that the sessions function, which writes it,
/// needs no write on the users table at all (`docs/security.md`, "What each function can do").
/// Token hashes are bare hex, so the prefix keeps the two apart.
pub fn logout_key(user_id: Uuid) -> String {
    format!("{LOGOUT_KEY_PREFIX}{user_id}")
}

/// Prefix of [`logout_key`]; the users function's grants on the sessions table exclude it.
pub const LOGOUT_KEY_PREFIX: &str = "logout#";

/// A registered user as stored. `Debug` leaves out the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub version: u64,
    /// Sessions are valid only while they carry this number: raising it revokes every session
    /// of the user at once, without a sweep over an eventually consistent index.
    pub session_generation: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("session_generation", &self.session_generation)
            .finish_non_exhaustive()
    }
}

/// A session as stored, keyed by the token's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_hash: TokenHash,
    pub user_id: Uuid,
    /// The user's `session_generation` when the session started; see [`UserRecord`].
    pub generation: u64,
    /// The user's log-out-everywhere count ([`logout_key`]) when the session started: the
    /// session is live only while the count is unchanged.
    pub logout_generation: u64,
    pub created_at: String,
    /// Epoch seconds; the table's TTL attribute, and checked at read time.
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct UserItem {
    pub pk: String,
    pub kind: String,
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub version: u64,
    /// Items written before generations existed have none: generation 0.
    #[serde(default)]
    pub session_generation: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct EmailItem {
    pub pk: String,
    pub kind: String,
    pub user_id: Uuid,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SessionItem {
    pub token_hash: String,
    pub user_id: Uuid,
    #[serde(default)]
    pub generation: u64,
    /// Sessions from before the marker existed have none: count 0, as a missing marker.
    #[serde(default)]
    pub logout_generation: u64,
    pub created_at: String,
    pub expires_at: i64,
}

impl From<&UserRecord> for UserItem {
    fn from(user: &UserRecord) -> Self {
        Self {
            pk: user_key(user.id),
            kind: USER_KIND.to_owned(),
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            password_hash: user.password_hash.clone(),
            version: user.version,
            session_generation: user.session_generation,
            created_at: user.created_at.clone(),
            updated_at: user.updated_at.clone(),
        }
    }
}

impl From<UserItem> for UserRecord {
    fn from(item: UserItem) -> Self {
        Self {
            id: item.id,
            email: item.email,
            name: item.name,
            password_hash: item.password_hash,
            version: item.version,
            session_generation: item.session_generation,
            created_at: item.created_at,
            updated_at: item.updated_at,
        }
    }
}

impl EmailItem {
    pub(crate) fn for_user(user: &UserRecord) -> Self {
        Self {
            pk: email_key(&user.email),
            kind: EMAIL_KIND.to_owned(),
            user_id: user.id,
        }
    }
}

impl From<&SessionRecord> for SessionItem {
    fn from(session: &SessionRecord) -> Self {
        Self {
            token_hash: session.token_hash.as_str().to_owned(),
            user_id: session.user_id,
            generation: session.generation,
            logout_generation: session.logout_generation,
            created_at: session.created_at.clone(),
            expires_at: session.expires_at,
        }
    }
}

impl From<SessionItem> for SessionRecord {
    fn from(item: SessionItem) -> Self {
        Self {
            token_hash: TokenHash::from_stored(item.token_hash),
            user_id: item.user_id,
            generation: item.generation,
            logout_generation: item.logout_generation,
            created_at: item.created_at,
            expires_at: item.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            id: Uuid::nil(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            version: 3,
            session_generation: 2,
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            updated_at: "2026-01-02T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn user_item_has_the_contract_attributes() {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(UserItem::from(&user())).unwrap();
        let s = |k: &str| item[k].as_s().unwrap().clone();
        assert_eq!(s("pk"), "USER#00000000-0000-0000-0000-000000000000");
        assert_eq!(s("kind"), "user");
        assert_eq!(s("id"), "00000000-0000-0000-0000-000000000000");
        assert_eq!(s("email"), "ada@example.com");
        assert_eq!(item["version"].as_n().unwrap(), "3");
        assert_eq!(item["session_generation"].as_n().unwrap(), "2");
        assert_eq!(item.len(), 10);
        let back: UserItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(UserRecord::from(back), user());
    }

    #[test]
    fn email_and_session_items_have_the_contract_attributes() {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(EmailItem::for_user(&user())).unwrap();
        assert_eq!(item["pk"].as_s().unwrap(), "EMAIL#ada@example.com");
        assert_eq!(item["kind"].as_s().unwrap(), "email");
        assert!(item["user_id"].as_s().is_ok());

        let session = SessionRecord {
            token_hash: TokenHash::from_stored("ab".repeat(32)),
            user_id: Uuid::nil(),
            generation: 4,
            logout_generation: 0,
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            expires_at: 1_800_000_000,
        };
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(SessionItem::from(&session)).unwrap();
        assert_eq!(item["expires_at"].as_n().unwrap(), "1800000000");
        assert_eq!(item["token_hash"].as_s().unwrap(), &"ab".repeat(32));
        assert_eq!(item["generation"].as_n().unwrap(), "4");
    }

    #[test]
    fn items_from_before_generations_read_as_generation_zero() {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(UserItem::from(&user())).unwrap();
        item.remove("session_generation");
        let back: UserItem = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back.session_generation, 0);
    }

    #[test]
    fn debug_omits_the_hash() {
        assert!(!format!("{:?}", user()).contains("argon2"));
    }
}
