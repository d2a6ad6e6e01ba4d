//! Repositories over DynamoDB: the only code that builds DynamoDB requests.

pub mod attempts;
mod cursor;
mod dynamo;
mod sessions;
mod sizes;
mod users;

pub use attempts::{Admission, LoginAttempts};
pub use cursor::Cursor;
pub use sessions::{Live, ReauthClaim, SessionStore};
pub use sizes::{TableSize, TableSizes};
pub use users::{UserPage, UserStore};

/// Name of the users table's GSI that lists users by creation time.
pub const BY_KIND_INDEX: &str = "by-kind";
/// Name of the sessions table's GSI that finds a user's sessions.
pub const BY_USER_INDEX: &str = "by-user";
