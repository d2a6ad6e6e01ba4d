//! Bearer-token authentication: the session behind `Authorization`, if it is live.

use http::header::AUTHORIZATION;

use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::http::Call;
use crate::records::SessionRecord;
use crate::state::State;
use crate::token::SessionToken;

/// The live session of the caller. Missing, malformed, unknown and expired tokens are all
/// [`ServiceError::Unauthenticated`]: expiry is checked here because TTL deletion lags by up
/// to days.
pub(crate) async fn session<Op>(
    state: &State,
    call: &Call<Op>,
) -> Result<(SessionToken, SessionRecord), ServiceError> {
    let token = call
        .request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(SessionToken::from_authorization)
        .ok_or(ServiceError::Unauthenticated)?;
    let session = state
        .sessions
        .get(&token.hash())
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    if session.expires_at <= Timestamp::now().epoch_seconds() {
        return Err(ServiceError::Unauthenticated);
    }
    tracing::Span::current().record("user_id", tracing::field::display(session.user_id));
    Ok((token, session))
}
