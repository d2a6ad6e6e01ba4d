//! The HTTP API: its types, its route tables and its handlers. Handlers are plain async
//! functions over a routed [`Call`](crate::http::Call); the OpenAPI document is generated from
//! their annotations and the types in [`model`].

mod auth;
pub mod health;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod sessions;
pub mod users;
