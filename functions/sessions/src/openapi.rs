//! This function's part of the OpenAPI document: its operations, the schemas they use, its tag.
//! The test below keeps `functions/sessions/openapi.json` up to date; `service-common` assembles the
//! document from every such fragment.

use utoipa::OpenApi;

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    paths(
        handlers::log_in,
        handlers::current,
        handlers::log_out,
        handlers::log_out_everywhere,
    ),
    tags((name = "sessions", description = "Log-in and log-out"))
)]
struct ApiDoc;

#[test]
fn openapi_fragment_is_up_to_date() {
    service_common::testing::check_function::<crate::State, _>(
        env!("CARGO_PKG_NAME"),
        crate::ROUTES,
        &ApiDoc::openapi(),
    );
}
