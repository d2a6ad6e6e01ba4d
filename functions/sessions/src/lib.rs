//! The `sessions` Lambda function: `/sessions` and `/sessions/current`.
//!
//! The handler is a plain async function so tests call it with a built request and a real
//! client; `main.rs` only builds the [`State`] once and hands [`handle`] to the runtime.

use lambda_http::{Body, Error, Request, Response};
use service_common::ServiceError;
use service_common::api::routes::{SESSIONS_ROUTES, SessionsOp};
use service_common::api::sessions;
use service_common::http::{Call, serve};

pub use service_common::State;

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, SESSIONS_ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<SessionsOp>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        SessionsOp::LogIn => sessions::log_in(state, call).await,
        SessionsOp::Current => sessions::current(state, call).await,
        SessionsOp::LogOut => sessions::log_out(state, call).await,
        SessionsOp::LogOutEverywhere => sessions::log_out_everywhere(state, call).await,
    }
}
