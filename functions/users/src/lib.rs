//! The `users` Lambda function: `/users`, `/users/me` and `/users/{id}`.
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
use service_common::store::{SessionStore, UserStore};
use service_common::{Clients, Config, FunctionState, ServiceError};

/// What `users` builds once per process: the repositories over both tables, the hasher and
/// the queue of session sweeps.
#[derive(Clone, Debug)]
pub struct State {
    pub config: Config,
    pub users: UserStore,
    /// Authentication, and the session a password change keeps.
    pub sessions: SessionStore,
    pub passwords: Passwords,
    /// A deletion and a password change ask for the sweep of the sessions they ended.
    pub sweeps: SweepQueue,
}

impl FunctionState for State {
    /// The pepper ring of the password hashes (its manifest declares it).
    const SECRETS: &'static [&'static str] = &[peppers::SECRET];

    fn new(config: Config, clients: Clients) -> Self {
        let dynamo = clients.dynamo;
        Self {
            users: UserStore::new(dynamo.clone(), &config.users_table),
            sessions: SessionStore::new(dynamo, &config.sessions_table),
            passwords: Passwords::owasp(clients.secrets),
            sweeps: clients.sweeps,
            config,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// The operations of `users`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Register,
    List,
    Me,
    Get,
    Update,
    Delete,
}

/// The route table: the same methods and templates as the contract's (a test pins them).
pub const ROUTES: &[Route<Op>] = &[
    Route::new(Method::POST, "/users", Op::Register),
    Route::new(Method::GET, "/users", Op::List),
    Route::new(Method::GET, "/users/me", Op::Me),
    Route::new(Method::GET, "/users/{id}", Op::Get),
    Route::new(Method::PATCH, "/users/{id}", Op::Update),
    Route::new(Method::DELETE, "/users/{id}", Op::Delete),
];

/// Serves one API Gateway request. Never returns `Err`: failures are rendered as the
/// documented error response, so the runtime never reports an invocation error for them.
pub async fn handle(state: &State, request: Request) -> Result<Response<Body>, Error> {
    Ok(serve(state, request, ROUTES, dispatch).await)
}

async fn dispatch(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    match call.op {
        Op::Register => handlers::register(state, call).await,
        Op::List => handlers::list(state, call).await,
        Op::Me => handlers::me(state, call).await,
        Op::Get => handlers::get(state, call).await,
        Op::Update => handlers::update(state, call).await,
        Op::Delete => handlers::delete(state, call).await,
    }
}
