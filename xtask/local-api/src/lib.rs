//! The deployed REST API, served on loopback for the `local` environment.
//!
//! moto stores everything Terraform creates but cannot run Lambda code without Docker and does
//! not serve API Gateway's execute-api URL, so this crate plays both parts: it routes requests
//! exactly as the REST API does (stage prefix, resource templates from `infra::routes::ROUTES`,
//! every client's API key with its usage plan's throttle and quota ([`limits`]), API Gateway's
//! own error bodies and limits) and runs the exact packaged `bootstrap`
//! binaries behind a Lambda Runtime API of its own (see [`runtime_api`] for why not a crate).
//!
//! It follows the `live` alias like Lambda: each request goes to a published version by the
//! alias's weights, each version running its own code and configuration as stored in the
//! emulator, and the routing follows the alias when xtask (or anyone) moves it ([`traffic`],
//! [`alias`]).
//!
//! Data flows one way: the outputs file, the emulator's aliases, versions and packages (with
//! the zips in `build/dist` as the fallback) go in; nothing here reads Terraform state or
//! source code.

pub mod access_log;
pub mod alias;
pub mod deployment;
pub mod function_env;
pub mod gateway;
pub mod instance;
pub mod limits;
pub mod package;
pub mod pool;
pub mod proxy_event;
pub mod queues;
pub mod routing;
pub mod runtime_api;
pub mod schedules;
pub mod server;
pub mod traffic;

pub use server::{Options, Server};
