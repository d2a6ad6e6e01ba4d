//! `/sessions`: log in, read the current session, log out, log out everywhere.

use http::{Response, StatusCode};
use lambda_http::Body;

use super::auth;
use super::model::{LogIn, NewSession, Session};
use super::routes::SessionsOp;
use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::http::response::ErrorBody;
use crate::http::{Call, body, response};
use crate::records::SessionRecord;
use crate::state::State;
use crate::token::SessionToken;

/// Logs in. Unknown e-mail and wrong password give the same 401, after the same argon2 work.
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
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn log_in(state: &State, call: Call<SessionsOp>) -> Result<Response<Body>, ServiceError> {
    let input: LogIn = body::json(&call)?;
    // Not validated: a malformed address simply matches no user, and says nothing.
    let email = input.email.trim().to_ascii_lowercase();
    let user = state.users.find_by_email(&email).await?;
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
        created_at: now.to_rfc3339(),
        expires_at: now.plus(state.config.session_ttl).epoch_seconds(),
    };
    state.sessions.put(&session).await?;
    tracing::info!(user_id = %user.id, "session started");
    let body = NewSession {
        token: token.expose().to_owned(),
        token_type: "Bearer".to_owned(),
        expires_at: session.expires_at,
        session: Session::from(&session),
    };
    response::json(StatusCode::CREATED, &body)
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
pub async fn current(
    state: &State,
    call: Call<SessionsOp>,
) -> Result<Response<Body>, ServiceError> {
    let (_, session) = auth::session(state, &call).await?;
    response::json(StatusCode::OK, &Session::from(&session))
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
pub async fn log_out(
    state: &State,
    call: Call<SessionsOp>,
) -> Result<Response<Body>, ServiceError> {
    let (token, session) = auth::session(state, &call).await?;
    state.sessions.delete(&token.hash()).await?;
    tracing::info!(user_id = %session.user_id, "session ended");
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
    call: Call<SessionsOp>,
) -> Result<Response<Body>, ServiceError> {
    let (_, session) = auth::session(state, &call).await?;
    let ended = state.sessions.delete_all_for_user(session.user_id).await?;
    tracing::info!(user_id = %session.user_id, sessions = ended, "all sessions ended");
    Ok(response::no_content())
}
