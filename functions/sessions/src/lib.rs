//! The `sessions` Lambda function: `/sessions` and `/sessions/current`.
//!
//! The handlers are plain async functions so tests call them with a built request and a real
//! client; `main.rs` only builds the [`State`] once and hands [`handle`] to the runtime.

mod handlers;
pub mod model;
#[cfg(test)]
mod openapi;

use http::Method;
use lambda_http::{Body, Error, Request, Response};
use service_common::http::{Call, Route, serve};
use service_common::password::Passwords;
use service_common::peppers;
use service_common::queues::SweepQueue;
use service_common::store::{LoginAttempts, SessionStore, UserStore};
use service_common::{Clients, Config, FunctionState, ServiceError};

/// What `sessions` builds once per process: the repositories over both tables (log-in
/// attempts share the sessions table), the hasher and the queue of session sweeps.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub users: UserStore,
    pub sessions: SessionStore,
    pub attempts: LoginAttempts,
    pub passwords: Passwords,
    pub sweeps: SweepQueue,
}

impl FunctionState for State {
    /// The pepper ring of the password hashes (its manifest declares it).
    const SECRETS: &'static [&'static str] = &[peppers::SECRET];

    fn new(config: Config, clients: Clients) -> Self {
        let dynamo = clients.dynamo;
        Self {
            users: UserStore::new(dynamo.clone(), &config.users_table),
            sessions: SessionStore::new(dynamo.clone(), &config.sessions_table),
            attempts: LoginAttempts::new(dynamo, &config.sessions_table),
            passwords: Passwords::owasp(clients.secrets),
            sweeps: clients.sweeps,
            config,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// The operations of `sessions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    LogIn,
    LogOutEverywhere,
    Current,
    LogOut,
}

/// The route table: the same methods and templates as the contract's (a test pins them).
pub const ROUTES: &[Route<Op>] = &[
    Route::new(Method::POST, "/sessions", Op::LogIn),
    Route::new(Method::DELETE, "/sessions", Op::LogOutEverywhere),
    Route::new(Method::GET, "/sessions/current", Op::Current),
    Route::new(Method::DELETE, "/sessions/current", Op::LogOut),
];

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        Op::LogIn => handlers::log_in(state, call).await,
        Op::Current => handlers::current(state, call).await,
        Op::LogOut => handlers::log_out(state, call).await,
        Op::LogOutEverywhere => handlers::log_out_everywhere(state, call).await,
    }
}
