//! This function's part of the OpenAPI document: its operations, the schemas they use, its tag.
//! The test below keeps `functions/health/openapi.json` up to date; `service-common` assembles the
//! document from every such fragment.

use utoipa::OpenApi;

use crate::check;

#[derive(OpenApi)]
#[openapi(
    paths(check::check),
    tags((name = "health", description = "Liveness and dependency checks"))
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
