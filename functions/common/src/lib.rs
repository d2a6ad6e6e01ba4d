//! What the Lambda functions share: the domain, the stores and the HTTP plumbing.
//!
//! Domain modules ([`validation`], [`password`], [`token`], [`records`], [`store`], [`clock`],
//! [`error`], [`config`]) know nothing of Lambda; [`http`] adapts `lambda_http` requests and
//! responses and runs every function's request pipeline; [`auth`] finds the caller behind a
//! bearer token. The handlers, route tables and OpenAPI paths live in the function crates,
//! each with its own [`State`](state::FunctionState) holding only what it uses; the password
//! hasher is behind the `passwords` feature so a function without it never links argon2, and
//! the declared secrets' reader ([`secrets`]) and the password pepper ring it holds
//! ([`peppers`]) behind `secrets` (which `passwords` turns on: every hash is peppered). The
//! messages the functions exchange through queues ([`sweeps`]) are plain data; sending them
//! ([`queues`]) is behind `queues`, so only the functions that send link the SQS client.

pub mod auth;
pub mod calls;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
#[cfg(feature = "passwords")]
pub mod password;
#[cfg(feature = "secrets")]
pub mod peppers;
#[cfg(feature = "queues")]
pub mod queues;
pub mod records;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod state;
pub mod store;
pub mod sweeps;
pub mod token;
pub mod validation;
pub mod xray;

#[cfg(test)]
mod openapi;
#[cfg(feature = "test-tables")]
pub mod testing;

pub use config::Config;
pub use error::ServiceError;
pub use state::{Clients, FunctionState};
