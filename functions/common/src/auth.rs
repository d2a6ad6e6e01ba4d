//! Bearer-token authentication: the session behind `Authorization`, if it is live. Shared by
//! every function that serves signed-in callers.

use http::header::AUTHORIZATION;

use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::http::Call;
use crate::records::{SessionRecord, UserRecord};
use crate::store::{SessionStore, UserStore};
use crate::token::SessionToken;

/// An authenticated caller: the token, its session and the user as read just now.
pub struct Caller {
    pub token: SessionToken,
    pub session: SessionRecord,
    pub user: UserRecord,
}

/// The live session of the caller. Missing, malformed, unknown, expired and revoked tokens are
/// all [`ServiceError::Unauthenticated`].
///
/// Live means four strongly consistent facts, checked on every request: the session item
/// exists, it has not expired (TTL deletion lags by up to days), its user exists with the
/// same session generation, and the user's count of log-outs everywhere is the session's.
/// Deleting the user and a password change each change the third fact in one write,
/// log-out-everywhere the fourth, so revocation never waits for an index or a sweep. The two
/// reads after the session's run side by side.
pub async fn caller<Op>(
    users: &UserStore,
    sessions: &SessionStore,
    call: &Call<Op>,
) -> Result<Caller, ServiceError> {
    let token = call
        .request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(SessionToken::from_authorization)
        .ok_or(ServiceError::Unauthenticated)?;
    let session = sessions
        .get(&token.hash())
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    if session.expires_at <= Timestamp::now().epoch_seconds() {
        return Err(ServiceError::Unauthenticated);
    }
    let (user, logouts) = tokio::join!(
        users.get(session.user_id),
        sessions.logouts(session.user_id)
    );
    if logouts? != session.logout_generation {
        return Err(ServiceError::Unauthenticated);
    }
    let user = user?
        .filter(|user| user.session_generation == session.generation)
        .ok_or(ServiceError::Unauthenticated)?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    Ok(Caller {
        token,
        session,
        user,
    })
}
