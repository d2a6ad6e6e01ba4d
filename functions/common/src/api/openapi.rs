//! The OpenAPI 3 document, generated from the handlers' annotations and the model types.
//! The checked-in copy is `functions/openapi.json`; a test fails when it is stale.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{health, model, sessions, users};
use crate::http::response::{ErrorBody, ErrorDetail};

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
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document always serialises");
    text.push('\n');
    text
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
