//! Lambda entry point (the binary is packaged as `bootstrap`).

use lambda_http::{Error, service_fn};

/// One thread: Lambda sends one request at a time per process, and a single-threaded runtime
/// starts faster. Password hashing runs on the blocking pool, off this thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    service_common::logging::init();
    let state: sessions::State = service_common::state::from_env().await?;
    let state = &state;
    lambda_http::run(service_fn(move |request| sessions::handle(state, request))).await
}
