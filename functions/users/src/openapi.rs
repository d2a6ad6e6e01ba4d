//! This function's part of the OpenAPI document: its operations, the schemas they use, its tag.
//! The test below keeps `functions/users/openapi.json` up to date; `service-common` assembles the
//! document from every such fragment.

use utoipa::OpenApi;

use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    paths(
        handlers::register,
        handlers::list,
        handlers::me,
        handlers::get,
        handlers::update,
        handlers::delete,
    ),
    tags((name = "users", description = "Registration and user management"))
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
