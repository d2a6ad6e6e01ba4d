//! The `health` Lambda function: `GET /health`.
//!
//! The handler is a plain async function so tests call it with a built request and a real
//! client; `main.rs` only builds the [`State`] once and hands [`handle`] to the runtime.

use lambda_http::{Body, Error, Request, Response};
use service_common::ServiceError;
use service_common::api::health;
use service_common::api::routes::{HEALTH_ROUTES, HealthOp};
use service_common::http::{Call, serve};

pub use service_common::State;

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, HEALTH_ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<HealthOp>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        HealthOp::Check => health::check(state, call).await,
    }
}
