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
///
/// Each rule is written only on what a fragment documents (found with `pointer_mut`, never by
/// indexing, which would insert), and a link only between operations that both exist: a
/// function removed takes its paths and schemas with it, and nothing here brings them back.
fn state_the_rules(document: &mut Value) {
    let schemas = "/components/schemas";
    for schema in ["RegisterUser", "UpdateUser"] {
        let properties = format!("{schemas}/{schema}/properties");
        let email = format!("{properties}/email");
        state(
            document,
            &email,
            "pattern",
            json!(validation::EMAIL_PATTERN),
        );
        let name = format!("{properties}/name");
        state(
            document,
            &name,
            "pattern",
            json!(validation::name_pattern()),
        );
        state(
            document,
            &name,
            "description",
            json!(
                "1 to 100 characters after trimming white space; no control or invisible formatting characters"
            ),
        );
    }
    let email = format!("{schemas}/LogIn/properties/email");
    state(
        document,
        &email,
        "maxLength",
        json!(validation::EMAIL_MAX_LEN),
    );
    // Optional fields are left out, never `null` (the handler refuses `null`).
    for field in ["name", "email", "password", "current_password"] {
        let property = format!("{schemas}/UpdateUser/properties/{field}");
        state(document, &property, "type", json!("string"));
    }
    let update = format!("{schemas}/UpdateUser");
    state(
        document,
        &update,
        "anyOf",
        json!([
            {"required": ["name"]},
            {"required": ["email"]},
            {"required": ["password"]},
        ]),
    );
    state(
        document,
        &update,
        "dependentRequired",
        json!({
            "email": ["current_password"],
            "password": ["current_password"],
        }),
    );
    // Every `cursor` parameter is a cursor of the stores.
    for operation in operations(document) {
        let parameters = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut);
        for parameter in parameters.into_iter().flatten() {
            if parameter["name"] == "cursor" {
                parameter["schema"]["pattern"] = json!(Cursor::PATTERN);
            }
        }
    }
    link(
        document,
        ("registerUser", "201"),
        "logIn",
        json!({
            "operationId": "logIn",
            "description": "Log in as the new user; send the `token` as `Authorization: Bearer <token>`",
            "requestBody": {"email": "$request.body#/email", "password": "$request.body#/password"},
        }),
    );
    let own = |operation: &str| json!({"operationId": operation, "parameters": {"id": "$response.body#/id"}});
    link(document, ("registerUser", "201"), "getUser", own("getUser"));
    for operation in ["getUser", "updateUser", "deleteUser"] {
        link(document, ("getMe", "200"), operation, own(operation));
    }
}

/// Sets `key` of the object at `pointer` to `value`, if a fragment documents that object.
fn state(document: &mut Value, pointer: &str, key: &str, value: Value) {
    if let Some(object) = document.pointer_mut(pointer) {
        object[key] = value;
    }
}

/// Every operation of every path.
fn operations(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|operations| operations.values_mut())
}

/// Links response `status` of operation `from` to another operation (`link`'s `operationId`)
/// under `name`, when both operations are documented.
fn link(document: &mut Value, (from, status): (&str, &str), name: &str, link: Value) {
    let to = link["operationId"].clone();
    if !operations(document).any(|operation| operation["operationId"] == to) {
        return;
    }
    if let Some(operation) = operations(document).find(|operation| operation["operationId"] == from)
        && let Some(response) = operation
            .pointer_mut(&format!("/responses/{status}"))
            .and_then(Value::as_object_mut)
    {
        response.entry("links").or_insert_with(|| json!({}))[name] = link;
    }
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

    /// With any one function's fragment gone (`cargo xtask remove`), the document has only
    /// what the other fragments and the shared parts document: no path, schema or link target
    /// the rules would have invented.
    #[test]
    fn a_removed_function_leaves_nothing_behind() {
        let all = fragments();
        for gone in 0..all.len() {
            let rest: Vec<_> = (0..all.len())
                .filter(|i| *i != gone)
                .map(|i| all[i].clone())
                .collect();
            let plain = serde_json::to_value({
                let mut openapi = ApiDoc::openapi();
                for fragment in rest.clone() {
                    openapi.merge(fragment);
                }
                openapi
            })
            .unwrap();
            let mut stated = document(rest);
            let keys = |v: &Value, pointer: &str| -> Vec<String> {
                v.pointer(pointer)
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default()
            };
            for pointer in ["/paths", "/components/schemas"] {
                assert_eq!(keys(&stated, pointer), keys(&plain, pointer), "{pointer}");
            }
            let ids: Vec<Value> = operations(&mut stated)
                .map(|operation| operation["operationId"].clone())
                .collect();
            for operation in operations(&mut stated) {
                for response in operation["responses"].as_object().into_iter().flatten() {
                    for link in response.1["links"].as_object().into_iter().flatten() {
                        assert!(ids.contains(&link.1["operationId"]), "{link:?}");
                    }
                }
            }
        }
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
