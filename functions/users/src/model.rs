//! Request and response bodies of `/users`. Request types reject unknown fields, so a typo such as
//! `"pasword"` is a 422 instead of a silently ignored field.

use serde::{Deserialize, Serialize};
use service_common::password::Password;
use service_common::records::UserRecord;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterUser {
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: Password,
}

/// `PATCH /users/{id}`: the version the client last read, and the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// The `version` of the user as last read; a different stored version is a 409.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991_u64)]
    #[serde(deserialize_with = "whole_number")]
    pub version: u64,
    /// Required to change `email` or `password`: a bearer token alone cannot take an account
    /// over. Missing or wrong: 403 `reauthentication_failed`, and the session that sent it ends.
    #[schema(value_type = Option<String>, format = Password, min_length = 1, max_length = 128)]
    #[serde(default, deserialize_with = "given")]
    pub current_password: Option<Password>,
    #[serde(default, deserialize_with = "given")]
    pub name: Option<String>,
    #[schema(max_length = 254)]
    #[serde(default, deserialize_with = "given")]
    pub email: Option<String>,
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 128)]
    #[serde(default, deserialize_with = "given")]
    pub password: Option<Password>,
}

/// `DELETE /users/{id}`: the password, proved again. A request without a body counts as one
/// without the password.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUser {
    /// Required: a bearer token alone cannot delete an account (and free its address for
    /// someone else's registration). Missing or wrong: 403 `reauthentication_failed`, and the
    /// session that sent it ends. Left out, never `null` (the handler refuses `null`).
    #[schema(value_type = String, format = Password, min_length = 1, max_length = 128)]
    #[serde(default, deserialize_with = "given")]
    pub current_password: Option<Password>,
}

/// An optional field that, when present, holds a value: `null` is refused (422), so that a
/// field is either left out or given, as the document says.
fn given<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Largest integer every JSON parser reads exactly (2^53 - 1).
const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// A whole number as JSON Schema means it: `2` and `2.0` alike (a client's JSON encoder may
/// write either), from 1 to [`MAX_SAFE_INTEGER`].
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::de::Error as _;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= MAX_SAFE_INTEGER as f64)
            .map(|f| f as u64)
    });
    whole
        .filter(|n| (1..=MAX_SAFE_INTEGER).contains(n))
        .ok_or_else(|| {
            D::Error::custom(format!(
                "version must be a whole number from 1 to {MAX_SAFE_INTEGER}"
            ))
        })
}

/// A user as the user itself sees it: never the password or its hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Increases by one on every change; send it back in `PATCH`.
    pub version: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<&UserRecord> for User {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            version: user.version,
            created_at: user.created_at.clone(),
            updated_at: user.updated_at.clone(),
        }
    }
}

/// A user as other signed-in users see it: no e-mail address, nothing that changes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicUser {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl From<&UserRecord> for PublicUser {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id,
            name: user.name.clone(),
            created_at: user.created_at.clone(),
        }
    }
}

/// `GET /users/{id}`: the full profile for its owner, the public one for anyone else.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UserView {
    Owner(User),
    Other(PublicUser),
}

/// `GET /users`: one page, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<PublicUser>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
