//! The OpenAPI 3 document, `functions/openapi.json`, assembled by the test below from every
//! function crate's fragment (`functions/*/openapi.json`, which each crate's own test keeps up
//! to date from its handlers' annotations) with the shared parts: the title, the error body,
//! the security schemes, and the rules the annotations cannot state. A new function crate's
//! operations appear by its fragment alone; nothing here lists the functions.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use serde_json::{Value, json};

use crate::http::response::{ErrorBody, ErrorDetail};
use crate::store::Cursor;
use crate::testing::{self, contract_routes};
use crate::validation;

/// The API as API Gateway serves it (paths are relative to the stage URL), without operations:
/// those come from the fragments.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "service",
        description = "Users and sessions behind API Gateway. Every response carries `x-request-id`; every error has the `ErrorBody` shape.",
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The `token` from `POST /sessions`"))
                    .build(),
            ),
        );
    }
}

/// Every function crate's fragment, in the order of their directory names.
fn fragments() -> Vec<utoipa::openapi::OpenApi> {
    let mut paths: Vec<_> = std::fs::read_dir(testing::functions_dir())
        .expect("list functions/")
        .map(|entry| entry.expect("functions/ entry").path().join("openapi.json"))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is no OpenAPI document: {e}", path.display()))
        })
        .collect()
}

/// The whole document: the shared parts, every fragment's paths, schemas and tags, and the
/// rules.
fn document(fragments: Vec<utoipa::openapi::OpenApi>) -> Value {
    let mut openapi = ApiDoc::openapi();
    for fragment in fragments {
        openapi.merge(fragment);
    }
    let mut document =
        serde_json::to_value(openapi).expect("the OpenAPI document always serialises");
    state_the_rules(&mut document);
    document
}

/// What the annotations cannot say, written into the document from the code that enforces
/// it: the input rules as patterns ([`validation`]), which fields `PATCH` needs together, the
/// cursor's shape, and the links from registration to log-in.
fn state_the_rules(document: &mut Value) {
    let schemas = &mut document["components"]["schemas"];
    for schema in ["RegisterUser", "UpdateUser"] {
        let properties = &mut schemas[schema]["properties"];
        properties["email"]["pattern"] = json!(validation::EMAIL_PATTERN);
        properties["name"]["pattern"] = json!(validation::name_pattern());
        properties["name"]["description"] = json!(
            "1 to 100 characters after trimming white space; no control or invisible formatting characters"
        );
    }
    schemas["LogIn"]["properties"]["email"]["maxLength"] = json!(validation::EMAIL_MAX_LEN);
    // Optional fields are left out, never `null` (the handler refuses `null`).
    for field in ["name", "email", "password", "current_password"] {
        schemas["UpdateUser"]["properties"][field]["type"] = json!("string");
    }
    let update = &mut schemas["UpdateUser"];
    update["anyOf"] = json!([
        {"required": ["name"]},
        {"required": ["email"]},
        {"required": ["password"]},
    ]);
    update["dependentRequired"] = json!({
        "email": ["current_password"],
        "password": ["current_password"],
    });
    for parameter in document["paths"]["/users"]["get"]["parameters"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if parameter["name"] == "cursor" {
            parameter["schema"]["pattern"] = json!(Cursor::PATTERN);
        }
    }
    let paths = &mut document["paths"];
    paths["/users"]["post"]["responses"]["201"]["links"] = json!({
        "logIn": {
            "operationId": "logIn",
            "description": "Log in as the new user; send the `token` as `Authorization: Bearer <token>`",
            "requestBody": {"email": "$request.body#/email", "password": "$request.body#/password"},
        },
        "getUser": {"operationId": "getUser", "parameters": {"id": "$response.body#/id"}},
    });
    let own = |operation: &str| json!({"operationId": operation, "parameters": {"id": "$response.body#/id"}});
    paths["/users/me"]["get"]["responses"]["200"]["links"] = json!({
        "getUser": own("getUser"),
        "updateUser": own("updateUser"),
        "deleteUser": own("deleteUser"),
    });
}

mod tests {
    use super::*;

    /// Fails when `functions/openapi.json` differs from the fragments. It is assembled from
    /// the checked-in fragments, so refresh those first: `UPDATE_EXPECT=1 cargo test -p health
    /// -p users -p sessions openapi`, then `UPDATE_EXPECT=1 cargo test -p service-common
    /// openapi`. The fragments' own tests catch a fragment that differs from its crate's code.
    #[test]
    fn openapi_document_is_up_to_date() {
        expect_test::expect_file![testing::functions_dir().join("openapi.json")]
            .assert_eq(&testing::pretty(&document(fragments())));
    }

    #[test]
    fn every_route_is_documented() {
        let document = document(fragments());
        for (method, template, _) in contract_routes() {
            assert!(
                testing::documents(&document, method, template),
                "{method} {template} is not documented"
            );
        }
    }
}
