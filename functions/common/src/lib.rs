//! Everything the three Lambda functions share.
//!
//! Domain modules ([`validation`], [`password`], [`token`], [`records`], [`store`], [`clock`],
//! [`error`], [`config`]) know nothing of Lambda; [`http`] adapts `lambda_http` requests and
//! responses; [`api`] holds the handlers, route tables and OpenAPI document. Each function
//! crate only picks its route table and dispatches to these handlers.

pub mod api;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod logging;
pub mod password;
pub mod records;
pub mod state;
pub mod store;
pub mod token;
pub mod validation;

#[cfg(feature = "test-tables")]
pub mod testing;

pub use config::Config;
pub use error::ServiceError;
pub use state::State;
