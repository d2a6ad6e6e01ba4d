//! The OpenAPI 3 document, generated from the handlers' annotations and the model types.
//! The checked-in copy is `functions/openapi.json`; a test fails when it is stale.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use serde_json::{Value, json};

use super::{health, model, sessions, users};
use crate::http::response::{ErrorBody, ErrorDetail};
use crate::store::Cursor;
use crate::validation;

/// The API as API Gateway serves it (paths are relative to the stage URL).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "service",
        description = "Users and sessions behind API Gateway. Every response carries `x-request-id`; every error has the `ErrorBody` shape.",
    ),
    paths(
        health::check,
        users::register,
        users::list,
        users::me,
        users::get,
        users::update,
        users::delete,
        sessions::log_in,
        sessions::current,
        sessions::log_out,
        sessions::log_out_everywhere,
    ),
    components(schemas(
        model::RegisterUser,
        model::UpdateUser,
        model::LogIn,
        model::User,
        model::PublicUser,
        model::UserView,
        model::UserPage,
        model::Session,
        model::NewSession,
        model::Health,
        model::HealthStatus,
        model::CheckStatus,
        ErrorBody,
        ErrorDetail,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Liveness and dependency checks"),
        (name = "users", description = "Registration and user management"),
        (name = "sessions", description = "Log-in and log-out"),
    )
)]
pub struct ApiDoc;

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

/// The document as pretty JSON with a trailing newline, the form that is checked in.
pub fn to_json() -> String {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document always serialises");
    state_the_rules(&mut document);
    let mut text =
        serde_json::to_string_pretty(&document).expect("the OpenAPI document always serialises");
    text.push('\n');
    text
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// Fails when `functions/openapi.json` differs from the code; with `UPDATE_OPENAPI=1` it
    /// rewrites the file instead.
    #[test]
    fn openapi_document_is_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
        let generated = to_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write functions/openapi.json");
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "functions/openapi.json is stale; refresh it with: UPDATE_OPENAPI=1 cargo test -p service-common openapi"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let doc = ApiDoc::openapi();
        let documented = |template: &str, method: &str| {
            let item = doc.paths.paths.get(template);
            let item = item.unwrap_or_else(|| panic!("{template} is not documented"));
            let operation = match method {
                "GET" => &item.get,
                "POST" => &item.post,
                "PATCH" => &item.patch,
                "DELETE" => &item.delete,
                other => panic!("unexpected method {other}"),
            };
            assert!(operation.is_some(), "{method} {template} is not documented");
        };
        for r in super::super::routes::HEALTH_ROUTES {
            documented(r.template, r.method.as_str());
        }
        for r in super::super::routes::USERS_ROUTES {
            documented(r.template, r.method.as_str());
        }
        for r in super::super::routes::SESSIONS_ROUTES {
            documented(r.template, r.method.as_str());
        }
    }
}
