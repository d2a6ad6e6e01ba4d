//! `/users`: register, list, read, update (optimistic concurrency), delete.

use http::header::{ETAG, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use lambda_http::{Body, RequestExt as _};
use uuid::Uuid;

use service_common::ServiceError;
use service_common::auth::{self, Caller};
use service_common::clock::Timestamp;
use service_common::http::response::ErrorBody;
use service_common::http::{Call, body, response};
use service_common::password::Password;
use service_common::records::UserRecord;
use service_common::store::Cursor;
use service_common::validation;

use crate::model::{PublicUser, RegisterUser, UpdateUser, User, UserPage, UserView};
use crate::{Op, State};

/// Page size bounds of `GET /users`.
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// How often `DELETE` re-reads and retries when the user changes under it.
const DELETE_ATTEMPTS: usize = 3;

fn user_response(status: StatusCode, user: &UserRecord) -> Result<Response<Body>, ServiceError> {
    let mut response = response::json(status, &User::from(user))?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", user.version))
        .map_err(|e| ServiceError::internal("etag header", e))?;
    response.headers_mut().insert(ETAG, etag);
    Ok(response)
}

/// The `{id}` of the path, parsed: ids are compared as UUIDs, never as text, so the upper-case
/// or braced spelling of an id names the same user. A value that is not a UUID names no user:
/// 404, not 400.
fn path_id(call: &Call<Op>) -> Result<Uuid, ServiceError> {
    call.params
        .get("id")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or(ServiceError::NotFound("user"))
}

/// The caller, who must be the user in the path: 403 for anyone else, whether or not that
/// user exists, so the answer says nothing about other accounts.
async fn owner(state: &State, call: &Call<Op>) -> Result<Caller, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, call).await?;
    if path_id(call).ok() != Some(caller.user.id) {
        return Err(ServiceError::Forbidden);
    }
    Ok(caller)
}

/// Registers a user. E-mail uniqueness is enforced by the transaction, not by a prior read.
#[utoipa::path(
    post,
    operation_id = "registerUser",
    path = "/users",
    tag = "users",
    request_body(content = RegisterUser, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = User, headers(
            ("location" = String, description = "Path of the new user"),
            ("etag" = String, description = "The user's version, quoted"),
        )),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` or `validation_failed`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn register(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let input: RegisterUser = body::json(&call)?;
    let email = validation::email(&input.email)?;
    let name = validation::name(&input.name)?;
    validation::password(input.password.expose())?;
    let password_hash = state.passwords.hash(&input.password).await?;
    let now = Timestamp::now().to_rfc3339();
    let user = UserRecord {
        id: Uuid::new_v4(),
        email,
        name,
        password_hash,
        version: 1,
        session_generation: 0,
        created_at: now.clone(),
        updated_at: now,
    };
    state.users.create(&user).await?;
    tracing::info!(user_id = %user.id, "user registered");
    let mut response = user_response(StatusCode::CREATED, &user)?;
    // The request's path, which carries the stage, so the location works as a URL path.
    let location = format!(
        "{}/{}",
        call.request.uri().path().trim_end_matches('/'),
        user.id
    );
    let location = HeaderValue::from_str(&location)
        .map_err(|e| ServiceError::internal("location header", e))?;
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// Lists users, oldest first, a page at a time.
#[utoipa::path(
    get,
    operation_id = "listUsers",
    path = "/users",
    tag = "users",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100, default 20", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of public profiles (no e-mail addresses)", body = UserPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn list(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    auth::caller(&state.users, &state.sessions, &call).await?;
    let query = call.request.query_string_parameters_ref();
    let limit = match query.and_then(|q| q.first("limit")) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ServiceError::InvalidQuery {
                name: "limit",
                reason: "must be a whole number from 1 to 100".to_owned(),
            })?,
    };
    let cursor = query
        .and_then(|q| q.first("cursor"))
        .map(Cursor::decode)
        .transpose()?;
    let page = state.users.list(limit, cursor.as_ref()).await?;
    let body = UserPage {
        items: page.users.iter().map(PublicUser::from).collect(),
        next_cursor: page.next.as_ref().map(Cursor::encode),
    };
    response::json(StatusCode::OK, &body)
}

/// The caller's own profile.
#[utoipa::path(
    get,
    operation_id = "getMe",
    path = "/users/me",
    tag = "users",
    responses(
        (status = 200, description = "The caller's full profile", body = User, headers(("etag" = String))),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn me(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, &call).await?;
    user_response(StatusCode::OK, &caller.user)
}

/// Reads one user: the full profile for its owner, the public profile for anyone else.
#[utoipa::path(
    get,
    operation_id = "getUser",
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The owner's full profile (with `etag`), or another user's public profile", body = UserView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn get(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = auth::caller(&state.users, &state.sessions, &call).await?;
    let id = path_id(&call)?;
    if id == caller.user.id {
        return user_response(StatusCode::OK, &caller.user);
    }
    let user = state
        .users
        .get(id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    response::json(StatusCode::OK, &PublicUser::from(&user))
}

/// Changes name, e-mail and/or password, if `version` is still the stored version.
#[utoipa::path(
    patch,
    operation_id = "updateUser",
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body(content = UpdateUser, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated; `version` increased by one", body = User, headers(("etag" = String))),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no, unknown or expired token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token belongs to another user; `reauthentication_failed`: `current_password` missing or wrong (the session has ended)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`version_conflict` or `email_taken`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` or `validation_failed`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn update(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = owner(state, &call).await?;
    let input: UpdateUser = body::json(&call)?;
    if input.name.is_none() && input.email.is_none() && input.password.is_none() {
        return Err(ServiceError::Validation {
            field: "body",
            reason: "give at least one of name, email, password".to_owned(),
        });
    }
    let name = input.name.as_deref().map(validation::name).transpose()?;
    let email = input.email.as_deref().map(validation::email).transpose()?;
    if let Some(password) = &input.password {
        validation::password(password.expose())?;
    }
    let current = &caller.user;
    if current.version != input.version {
        return Err(ServiceError::VersionConflict);
    }
    if email.is_some() || input.password.is_some() {
        reauthenticate(state, &caller, input.current_password.as_ref()).await?;
    }
    let (password_hash, session_generation, keep) = match &input.password {
        // A new password ends every other session: the generation moves on, and only the
        // caller's session moves with it, in the same transaction.
        Some(password) => {
            let next = current.session_generation + 1;
            let keep = state.sessions.restamp(&caller.session, next)?;
            (state.passwords.hash(password).await?, next, Some(keep))
        }
        None => (
            current.password_hash.clone(),
            current.session_generation,
            None,
        ),
    };
    let updated = UserRecord {
        id: current.id,
        email: email.unwrap_or_else(|| current.email.clone()),
        name: name.unwrap_or_else(|| current.name.clone()),
        password_hash,
        version: current.version + 1,
        session_generation,
        created_at: current.created_at.clone(),
        updated_at: Timestamp::now().to_rfc3339(),
    };
    state.users.replace(current, &updated, keep).await?;
    tracing::info!(
        user_id = %updated.id,
        version = updated.version,
        sessions_revoked = updated.session_generation != current.session_generation,
        "user updated"
    );
    user_response(StatusCode::OK, &updated)
}

/// Checks the current password before a change of e-mail or password. A missing or wrong one
/// ends the session that sent it: a stolen token buys one guess, and further guesses have to
/// go through log-in, which counts them.
async fn reauthenticate(
    state: &State,
    caller: &Caller,
    current_password: Option<&Password>,
) -> Result<(), ServiceError> {
    let verified = match current_password {
        Some(password) => {
            state
                .passwords
                .verify(password, &caller.user.password_hash)
                .await?
        }
        None => false,
    };
    if verified {
        return Ok(());
    }
    state.sessions.delete(&caller.token.hash()).await?;
    tracing::info!("re-authentication failed; session ended");
    Err(ServiceError::ReauthenticationFailed)
}

/// Deletes the user, its e-mail reservation, and all its sessions.
#[utoipa::path(
    delete,
    operation_id = "deleteUser",
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted, sessions included"),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`version_conflict`: the user kept changing during the delete", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn delete(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = owner(state, &call).await?;
    let id = caller.user.id;
    let mut user = caller.user;
    let mut attempt = 1;
    loop {
        match state.users.delete(&user).await {
            Ok(()) => break,
            Err(ServiceError::VersionConflict) if attempt < DELETE_ATTEMPTS => {
                attempt += 1;
                user = state
                    .users
                    .get(id)
                    .await?
                    .ok_or(ServiceError::NotFound("user"))?;
            }
            Err(error) => return Err(error),
        }
    }
    // Every session stopped authenticating with the delete (its user is gone); this removes
    // the items it can find, and TTL the rest.
    let sessions = state.sessions.delete_all_for_user(id).await?;
    tracing::info!(user_id = %id, sessions, "user deleted");
    Ok(response::no_content())
}
