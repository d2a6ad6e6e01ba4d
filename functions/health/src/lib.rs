//! The `health` Lambda function: `GET /health`.
//!
//! The handler is a plain async function so tests call it with a built request and a real
//! client; `main.rs` only builds the [`State`] once and hands [`handle`] to the runtime. The
//! state is the configuration and a DynamoDB client: no repositories, no password hasher.

mod check;
pub mod model;
#[cfg(test)]
mod openapi;

use aws_sdk_dynamodb::Client;
use http::Method;
use lambda_http::{Body, Error, Request, Response};
use service_common::http::{Call, Route, serve};
use service_common::{Clients, Config, FunctionState, ServiceError};

/// What `health` builds once per process.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    /// For `DescribeTable` in the deep check.
    pub dynamo: Client,
}

impl FunctionState for State {
    fn new(config: Config, clients: Clients) -> Self {
        Self {
            config,
            dynamo: clients.dynamo,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// The operations of `health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Check,
}

/// The route table: the same methods and templates as the contract's (a test pins them).
pub const ROUTES: &[Route<Op>] = &[Route::new(Method::GET, "/health", Op::Check)];

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        Op::Check => check::check(state, call).await,
    }
}
