//! `/sessions`: log in, read the current session, log out, log out everywhere.

use http::{Response, StatusCode};
use lambda_http::Body;

use service_common::ServiceError;
use service_common::auth;
use service_common::clock::Timestamp;
use service_common::http::response::ErrorBody;
use service_common::http::{Call, body, response};
use service_common::logging::error_chain;
use service_common::records::{SessionRecord, UserRecord};
use service_common::store::Admission;
use service_common::token::SessionToken;
use service_common::validation::EMAIL_MAX_LEN;
use uuid::Uuid;

use crate::model::{LogIn, NewSession, Session};
use crate::{Op, State};

/// Logs in. Unknown e-mail and wrong password give the same 401, after the same argon2 work;
/// attempts per e-mail address are limited (`store::attempts`),
/// for registered and unknown addresses alike.
#[utoipa::path(
    post,
    operation_id = "logIn",
    path = "/sessions",
    tag = "sessions",
    request_body(content = LogIn, content_type = "application/json"),
    responses(
        (status = 201, description = "Logged in; the token is shown only here", body = NewSession),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` or `validation_failed`", body = ErrorBody),
        (status = 429, description = "`too_many_attempts` (see `retry-after`) or `throttled`", body = ErrorBody, headers(
            ("retry-after" = u64, description = "Seconds until the next attempt is counted, with `too_many_attempts`"),
        )),
    ),
    security(("api_key" = []))
)]
pub async fn log_in(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let input: LogIn = body::json(&call)?;
    // The contract's bound, enforced before anything is counted or read.
    if input.email.chars().count() > EMAIL_MAX_LEN {
        return Err(ServiceError::Validation {
            field: "email",
            reason: format!("must be at most {EMAIL_MAX_LEN} characters"),
        });
    }
    let Some(email) = lookup_key(&input.email) else {
        tracing::info!("log-in refused");
        return Err(ServiceError::InvalidCredentials);
    };
    if let Admission::Refused { retry_after } = state.attempts.admit(&email).await? {
        tracing::info!(retry_after, "log-in attempts over the limit");
        return Err(ServiceError::TooManyAttempts { retry_after });
    }
    // The same DynamoDB work for every address: the e-mail item, a user item (or the item of
    // nobody) and a log-out marker, so timing does not tell which addresses are registered.
    let user = state.users.find_by_email(&email).await?;
    let logouts = state
        .sessions
        .logouts(user.as_ref().map_or(Uuid::nil(), |user| user.id))
        .await?;
    let verified = match &user {
        Some(user) => {
            state
                .passwords
                .verify(&input.password, &user.password_hash)
                .await?
        }
        None => state.passwords.verify_dummy(&input.password).await?,
    };
    let user = match user {
        Some(user) if verified => user,
        _ => {
            tracing::info!("log-in refused");
            return Err(ServiceError::InvalidCredentials);
        }
    };
    let token = SessionToken::generate()?;
    let now = Timestamp::now();
    let session = SessionRecord {
        token_hash: token.hash(),
        user_id: user.id,
        generation: user.session_generation,
        logout_generation: logouts,
        created_at: now.to_rfc3339(),
        expires_at: now.plus(state.config.session_ttl).epoch_seconds(),
    };
    // The session commits only if the user still exists with the generation read above: a
    // log-in racing a delete, a password change or a log-out-everywhere loses.
    if !state
        .sessions
        .start(&session, state.users.still_current(&user)?)
        .await?
    {
        tracing::info!(user_id = %user.id, "log-in lost a race with a revocation");
        return Err(ServiceError::InvalidCredentials);
    }
    state.attempts.clear(&email).await?;
    tracing::info!(user_id = %user.id, "session started");
    upgrade_password_hash(state, &input, &user).await;
    let body = NewSession {
        token: token.expose().to_owned(),
        token_type: "Bearer".to_owned(),
        expires_at: session.expires_at,
        session: Session::from(&session),
    };
    response::json(StatusCode::CREATED, &body)
}

/// After a successful log-in: re-hashes the password with the current pepper key when the
/// stored hash used another key or none (`Passwords::upgrade`), so hashes move to the current
/// key and an old key can leave the ring. Best effort: the user is logged in either way, so a
/// failure is a `WARN` line, never the answer; the next log-in tries again.
async fn upgrade_password_hash(state: &State, input: &LogIn, user: &UserRecord) {
    let result = async {
        let Some(upgraded) = state
            .passwords
            .upgrade(&input.password, &user.password_hash)
            .await?
        else {
            return Ok(None);
        };
        state
            .users
            .upgrade_password_hash(user.id, &user.password_hash, &upgraded)
            .await
            .map(Some)
    };
    match result.await {
        Ok(None) => {}
        Ok(Some(true)) => {
            tracing::info!(user_id = %user.id, "password hash moved to the current pepper key");
        }
        Ok(Some(false)) => {
            tracing::info!(user_id = %user.id, "password hash changed meanwhile; not upgraded");
        }
        Err(error) => tracing::warn!(
            user_id = %user.id,
            error = %error_chain(&error),
            "password hash upgrade failed"
        ),
    }
}

/// The address to look a log-in up by. Not validated: a malformed address simply matches no
/// user, and says nothing. One that no registration could have stored is `None`, and stops
/// before any DynamoDB call: DynamoDB refuses keys over 2048 bytes with an error that would
/// surface as a 500.
fn lookup_key(raw: &str) -> Option<String> {
    let email = raw.trim().to_ascii_lowercase();
    (!email.is_empty() && email.len() <= EMAIL_MAX_LEN).then_some(email)
}

/// The session of the bearer token.
#[utoipa::path(
    get,
    operation_id = "getCurrentSession",
    path = "/sessions/current",
    tag = "sessions",
    responses(
        (status = 200, description = "The live session", body = Session),
        (status = 401, description = "`unauthenticated`: no, unknown or expired token", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn current(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, &call).await?;
    response::json(StatusCode::OK, &Session::from(&caller.session))
}

/// Ends the session of the bearer token.
#[utoipa::path(
    delete,
    operation_id = "logOut",
    path = "/sessions/current",
    tag = "sessions",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn log_out(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, &call).await?;
    state.sessions.delete(&caller.token.hash()).await?;
    tracing::info!(user_id = %caller.user.id, "session ended");
    Ok(response::no_content())
}

/// Ends every session of the bearer token's user.
#[utoipa::path(
    delete,
    operation_id = "logOutEverywhere",
    path = "/sessions",
    tag = "sessions",
    responses(
        (status = 204, description = "All of the user's sessions ended"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn log_out_everywhere(
    state: &State,
    call: Call<Op>,
) -> Result<Response<Body>, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, &call).await?;
    let id = caller.user.id;
    // Revocation is this one write; the sweep it asks for only tidies up, off the request path.
    state.sessions.log_out_everywhere(id).await?;
    state.sweeps.request(id).await;
    tracing::info!(user_id = %id, "all sessions ended");
    Ok(response::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_addresses_over_the_limit_never_reach_dynamodb() {
        // DynamoDB refuses keys over 2048 bytes with a ValidationException (a 500 here); the
        // emulator does not check, so this pins the guard in front of the lookup.
        let long = format!("{}@example.com", "a".repeat(2100));
        assert!(long.len() > EMAIL_MAX_LEN);
        assert!(lookup_key(&long).is_none());
        assert_eq!(
            lookup_key(" Ada@Example.com ").as_deref(),
            Some("ada@example.com")
        );
    }
}
