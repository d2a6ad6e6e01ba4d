//! Request and response bodies of `/sessions`. Request types reject unknown fields, so a typo
//! such as `"pasword"` is a 422 instead of a silently ignored field.

use serde::{Deserialize, Serialize};
use service_common::password::Password;
use service_common::records::SessionRecord;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /sessions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogIn {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: Password,
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
