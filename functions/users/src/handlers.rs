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
use service_common::store::{Cursor, ReauthClaim};
use service_common::validation;

use crate::model::{DeleteUser, PublicUser, RegisterUser, UpdateUser, User, UserPage, UserView};
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
    if let Some(current_password) = &input.current_password {
        validation::current_password(current_password.expose())?;
    }
    let current = &caller.user;
    if current.version != input.version {
        return Err(ServiceError::VersionConflict);
    }
    let claim = if email.is_some() || input.password.is_some() {
        Some(reauthenticate(state, &caller, input.current_password.as_ref()).await?)
    } else {
        None
    };
    let new_hash = match &input.password {
        Some(password) => Some(state.passwords.hash(password).await?),
        None => None,
    };
    let (password_hash, session_generation) = match new_hash {
        // A new password ends every other session: the generation moves on, and only the
        // caller's session moves with it, in the same transaction.
        Some(hash) => (hash, current.session_generation + 1),
        None => (current.password_hash.clone(), current.session_generation),
    };
    let live = match &claim {
        Some(claim) if session_generation != current.session_generation => {
            vec![state.sessions.restamp(claim, session_generation)?]
        }
        Some(claim) => vec![state.sessions.release_within(claim)?],
        None => Vec::new(),
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
    if let Err(error) = state.users.replace(current, &updated, live).await {
        return Err(give_back(state, claim, error).await);
    }
    let sessions_revoked = updated.session_generation != current.session_generation;
    if sessions_revoked {
        // The other sessions ended with the write; the caller's moved to the new generation,
        // which the sweep leaves alone.
        state.sweeps.request(updated.id).await;
    }
    tracing::info!(
        user_id = %updated.id,
        version = updated.version,
        sessions_revoked,
        "user updated"
    );
    user_response(StatusCode::OK, &updated)
}

/// Checks the current password before a change of e-mail or password, or a deletion. The
/// session's one check is claimed first ([`SessionStore::claim_reauthentication`]), so
/// concurrent requests on one token get one password check between them, and the others 401.
/// A missing or wrong password ends the session that sent it: a stolen token buys one guess,
/// and further guesses have to go through log-in, which counts them.
///
/// [`SessionStore::claim_reauthentication`]: service_common::store::SessionStore::claim_reauthentication
async fn reauthenticate(
    state: &State,
    caller: &Caller,
    current_password: Option<&Password>,
) -> Result<ReauthClaim, ServiceError> {
    let Some(password) = current_password else {
        state.sessions.delete(&caller.token.hash()).await?;
        tracing::info!("re-authentication without a password; session ended");
        return Err(ServiceError::ReauthenticationFailed);
    };
    let claim = state
        .sessions
        .claim_reauthentication(&caller.session)
        .await?;
    if state
        .passwords
        .verify(password, &caller.user.password_hash)
        .await?
    {
        return Ok(claim);
    }
    state.sessions.delete(&caller.token.hash()).await?;
    tracing::info!("re-authentication failed; session ended");
    Err(ServiceError::ReauthenticationFailed)
}

/// After a verified password, a change that did not commit: a conflict or a taken address
/// gives the claim back (the session may try again); a session that ended meanwhile keeps
/// nothing to give back.
async fn give_back(state: &State, claim: Option<ReauthClaim>, error: ServiceError) -> ServiceError {
    if let Some(claim) = claim
        && !matches!(error, ServiceError::Unauthenticated)
    {
        state.sessions.release(claim).await;
    }
    error
}

/// Deletes the user, its e-mail reservation, and all its sessions, after the current password.
#[utoipa::path(
    delete,
    operation_id = "deleteUser",
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body(content = DeleteUser, content_type = "application/json"),
    responses(
        (status = 204, description = "Deleted, sessions included"),
        (status = 400, description = "`malformed_json`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no, unknown or expired token, or the session ended or was revoked during the delete", body = ErrorBody),
        (status = 403, description = "`forbidden`: the token belongs to another user; `reauthentication_failed`: `current_password` missing or wrong (the session has ended)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`version_conflict`: the user kept changing during the delete", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` or `validation_failed`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn delete(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let caller = owner(state, &call).await?;
    let input: DeleteUser = if call.body().is_empty() {
        DeleteUser::default()
    } else {
        body::json(&call)?
    };
    if let Some(current_password) = &input.current_password {
        validation::current_password(current_password.expose())?;
    }
    let claim = reauthenticate(state, &caller, input.current_password.as_ref()).await?;
    let id = caller.user.id;
    let generation = caller.user.session_generation;
    let mut user = caller.user;
    let mut attempt = 1;
    loop {
        // The delete commits only while the session that proved the password is live: its
        // claim, and no log-out-everywhere since it started; the user item's own condition
        // holds its version and session generation (a password change racing it).
        let live = vec![
            state.sessions.release_within(&claim)?,
            state
                .sessions
                .logouts_unchanged(id, caller.session.logout_generation)?,
        ];
        match state.users.delete(&user, live).await {
            Ok(()) => break,
            Err(ServiceError::VersionConflict) if attempt < DELETE_ATTEMPTS => {
                attempt += 1;
                user = match state.users.get(id).await? {
                    Some(user) if user.session_generation == generation => user,
                    // Gone or re-keyed by a password change: this session is no longer live.
                    _ => return Err(ServiceError::Unauthenticated),
                };
            }
            Err(error) => return Err(give_back(state, Some(claim), error).await),
        }
    }
    // Every session stopped authenticating with the delete (its user is gone); the sweep
    // removes the items it can find, off the request path, and TTL the rest.
    state.sweeps.request(id).await;
    tracing::info!(user_id = %id, "user deleted");
    Ok(response::no_content())
}
