//! HTTP plumbing shared by the three functions: routing on API Gateway's resource template,
//! JSON bodies, responses with the documented error body, request ids and CORS.

pub mod body;
pub mod response;
pub mod routing;
mod serve;

pub use routing::{Call, PathParams, Route};
pub use serve::{request_id, serve};

/// Largest request body accepted. Our bodies are a few hundred bytes; the limit keeps a
/// client from making us parse (and hash) megabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
