//! The `users` Lambda function: `/users`, `/users/me` and `/users/{id}`.
//!
//! The handler is a plain async function so tests call it with a built request and a real
//! client; `main.rs` only builds the [`State`] once and hands [`handle`] to the runtime.

use lambda_http::{Body, Error, Request, Response};
use service_common::ServiceError;
use service_common::api::routes::{USERS_ROUTES, UsersOp};
use service_common::api::users;
use service_common::http::{Call, serve};

pub use service_common::State;

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, USERS_ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<UsersOp>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        UsersOp::Register => users::register(state, call).await,
        UsersOp::List => users::list(state, call).await,
        UsersOp::Me => users::me(state, call).await,
        UsersOp::Get => users::get(state, call).await,
        UsersOp::Update => users::update(state, call).await,
        UsersOp::Delete => users::delete(state, call).await,
    }
}
