//! Request and response bodies. Request types reject unknown fields, so a typo such as
//! `"pasword"` is a 422 instead of a silently ignored field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::password::Password;
use crate::records::{SessionRecord, UserRecord};

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterUser {
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    #[schema(example = "Ada Lovelace", min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 128)]
    pub password: Password,
}

/// `PATCH /users/{id}`: the version the client last read, and the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// The `version` of the user as last read; a different stored version is a 409.
    #[schema(minimum = 1)]
    pub version: u64,
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(max_length = 254)]
    pub email: Option<String>,
    #[schema(value_type = Option<String>, format = Password, min_length = 8, max_length = 128)]
    pub password: Option<Password>,
}

/// `POST /sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogIn {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
}

/// A user as clients see it: never the password or its hash.
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

/// `GET /users`: one page, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A session as clients see it: never the token's hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub user_id: Uuid,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Epoch seconds.
    pub expires_at: i64,
}

impl From<&SessionRecord> for Session {
    fn from(session: &SessionRecord) -> Self {
        Self {
            user_id: session.user_id,
            created_at: session.created_at.clone(),
            expires_at: session.expires_at,
        }
    }
}

/// `POST /sessions`: the token, shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewSession {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Epoch seconds.
    pub expires_at: i64,
    pub session: Session,
}

/// Overall health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// The result of one dependency check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Unavailable,
}

/// `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// The deployed version (`SERVICE_VERSION`).
    pub version: String,
    /// Dependency checks by name; empty unless `deep=true`.
    pub checks: BTreeMap<String, CheckStatus>,
}
