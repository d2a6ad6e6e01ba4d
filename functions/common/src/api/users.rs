//! `/users`: register, list, read, update (optimistic concurrency), delete.

use http::header::{ETAG, LOCATION};
use http::{HeaderValue, Response, StatusCode};
use lambda_http::{Body, RequestExt as _};
use uuid::Uuid;

use super::auth;
use super::model::{RegisterUser, UpdateUser, User, UserPage};
use super::routes::UsersOp;
use crate::clock::Timestamp;
use crate::error::ServiceError;
use crate::http::response::ErrorBody;
use crate::http::{Call, body, response};
use crate::records::UserRecord;
use crate::state::State;
use crate::store::Cursor;
use crate::validation;

/// Page size bounds of `GET /users`.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// How often `DELETE` re-reads and retries when the user changes under it.
const DELETE_ATTEMPTS: usize = 3;

fn user_response(status: StatusCode, user: &UserRecord) -> Result<Response<Body>, ServiceError> {
    let mut response = response::json(status, &User::from(user))?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", user.version))
        .map_err(|e| ServiceError::internal("etag header", e))?;
    response.headers_mut().insert(ETAG, etag);
    Ok(response)
}

/// The `{id}` of the path. A value that is not a UUID names no user: 404, not 400.
fn path_id(call: &Call<UsersOp>) -> Result<Uuid, ServiceError> {
    call.params
        .get("id")
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or(ServiceError::NotFound("user"))
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
pub async fn register(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
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
        (status = 200, description = "One page", body = UserPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
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
        items: page.users.iter().map(User::from).collect(),
        next_cursor: page.next.as_ref().map(Cursor::encode),
    };
    response::json(StatusCode::OK, &body)
}

/// Reads one user.
#[utoipa::path(
    get,
    operation_id = "getUser",
    path = "/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User, headers(("etag" = String))),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
    let id = path_id(&call)?;
    let user = state
        .users
        .get(id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    user_response(StatusCode::OK, &user)
}

/// The caller's session must belong to the user in the path.
async fn authorize(state: &State, call: &Call<UsersOp>) -> Result<Uuid, ServiceError> {
    let (_, session) = auth::session(state, call).await?;
    let target = call.params.get("id").unwrap_or_default();
    if session.user_id.to_string() != target {
        return Err(ServiceError::Forbidden);
    }
    Ok(session.user_id)
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
        (status = 403, description = "`forbidden`: the token belongs to another user", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`version_conflict` or `email_taken`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_body` or `validation_failed`", body = ErrorBody),
        (status = 429, description = "`throttled`", body = ErrorBody),
    ),
    security(("api_key" = [], "bearer" = []))
)]
pub async fn update(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
    let id = authorize(state, &call).await?;
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
    let current = state
        .users
        .get(id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    if current.version != input.version {
        return Err(ServiceError::VersionConflict);
    }
    let password_hash = match &input.password {
        Some(password) => state.passwords.hash(password).await?,
        None => current.password_hash.clone(),
    };
    let updated = UserRecord {
        id,
        email: email.unwrap_or_else(|| current.email.clone()),
        name: name.unwrap_or_else(|| current.name.clone()),
        password_hash,
        version: current.version + 1,
        created_at: current.created_at.clone(),
        updated_at: Timestamp::now().to_rfc3339(),
    };
    state.users.replace(&current, &updated).await?;
    tracing::info!(user_id = %id, version = updated.version, "user updated");
    user_response(StatusCode::OK, &updated)
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
pub async fn delete(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
    let id = authorize(state, &call).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let user = state
            .users
            .get(id)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        match state.users.delete(&user).await {
            Ok(()) => break,
            Err(ServiceError::VersionConflict) if attempt < DELETE_ATTEMPTS => continue,
            Err(error) => return Err(error),
        }
    }
    // After the user is gone no new session can start, so this sweep is complete.
    let sessions = state.sessions.delete_all_for_user(id).await?;
    tracing::info!(user_id = %id, sessions, "user deleted");
    Ok(response::no_content())
}
