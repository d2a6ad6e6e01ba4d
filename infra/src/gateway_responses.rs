//! API Gateway's own answers (no API key, unknown route, throttled, body too large, function
//! failed or timed out), in the one error shape the functions use:
//! `{"error":{"code","message","request_id"}}` with an `x-request-id` header.
//!
//! [`GATEWAY_RESPONSES`] and [`TEMPLATE`] are the single source: infra renders one
//! `aws_api_gateway_gateway_response` per row from them, and the local API server renders its
//! answers from the same row and template with [`GatewayResponse::body`], so a client sees the
//! same bytes locally and on AWS. Codes are the functions' codes (`service_common::error`)
//! wherever a function has the same condition.

/// The body of every gateway answer. `{code}` and `{message}` are filled in at synth time from
/// the row; `$context.requestId` is left for API Gateway (or the local server) to fill in per
/// request. Codes and messages are plain ASCII without quotes or backslashes (a unit test
/// checks it), so substituting them keeps the template valid JSON.
pub const TEMPLATE: &str =
    r#"{"error":{"code":"{code}","message":"{message}","request_id":"$context.requestId"}}"#;

/// Headers every gateway answer carries: `(header name, API Gateway mapping expression)`.
/// Same `x-request-id` the functions send, so clients read the id from one place, and the same
/// `cache-control: no-store` (a static value is quoted, as API Gateway's mapping syntax wants):
/// no shared or browser cache keeps an answer of an identity API.
pub const HEADERS: &[(&str, &str)] = &[
    ("x-request-id", "context.requestId"),
    ("cache-control", "'no-store'"),
];

/// The content type the template is registered for (and the local server answers with).
pub const CONTENT_TYPE: &str = "application/json";

/// One customised gateway response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayResponse {
    /// API Gateway's response type, as the `PutGatewayResponse` API spells it.
    pub response_type: &'static str,
    /// The status to answer with. `None` for the `DEFAULT_4XX`/`DEFAULT_5XX` fallbacks: a
    /// status there would overwrite the status of every response type that falls back to them
    /// (a 401 and a 415 would both become the same code), so they keep the original one.
    pub status: Option<u16>,
    /// The stable `error.code` clients switch on.
    pub code: &'static str,
    /// The human-readable `error.message`.
    pub message: &'static str,
}

/// Every gateway response the API customises. Types not listed fall back to `DEFAULT_4XX` or
/// `DEFAULT_5XX`, which use the same template, so no answer keeps API Gateway's
/// `{"message": ...}` shape.
pub static GATEWAY_RESPONSES: &[GatewayResponse] = &[
    GatewayResponse {
        response_type: "DEFAULT_4XX",
        status: None,
        code: "request_rejected",
        message: "the request was rejected",
    },
    GatewayResponse {
        response_type: "DEFAULT_5XX",
        status: None,
        code: "internal_error",
        message: "internal error",
    },
    // No resource or no method for the path: what the functions answer for a path they have
    // no route for (`ServiceError::RouteNotFound`), instead of API Gateway's misleading 403.
    GatewayResponse {
        response_type: "MISSING_AUTHENTICATION_TOKEN",
        status: Some(404),
        code: "route_not_found",
        message: "no route for this path",
    },
    // No `x-api-key`, or a key that is not in the stage's usage plan.
    GatewayResponse {
        response_type: "INVALID_API_KEY",
        status: Some(403),
        code: "invalid_api_key",
        message: "a valid API key is required in the x-api-key header",
    },
    GatewayResponse {
        response_type: "ACCESS_DENIED",
        status: Some(403),
        code: "forbidden",
        message: "access denied",
    },
    GatewayResponse {
        response_type: "THROTTLED",
        status: Some(429),
        code: "throttled",
        message: "too many requests; retry later",
    },
    GatewayResponse {
        response_type: "QUOTA_EXCEEDED",
        status: Some(429),
        code: "quota_exceeded",
        message: "the API key's request quota is used up",
    },
    GatewayResponse {
        response_type: "REQUEST_TOO_LARGE",
        status: Some(413),
        code: "payload_too_large",
        message: "request body exceeds 10485760 bytes",
    },
    GatewayResponse {
        response_type: "BAD_REQUEST_BODY",
        status: Some(422),
        code: "invalid_body",
        message: "request body has the wrong shape",
    },
    GatewayResponse {
        response_type: "BAD_REQUEST_PARAMETERS",
        status: Some(400),
        code: "invalid_parameters",
        message: "a required request parameter is missing or invalid",
    },
    GatewayResponse {
        response_type: "INTEGRATION_TIMEOUT",
        status: Some(504),
        code: "integration_timeout",
        message: "the function did not answer in time",
    },
    // The function crashed, failed or answered something that is not a proxy response. The
    // same code and message as DEFAULT_5XX (and the functions' own 500s): for the client it is
    // an internal error whichever type API Gateway files it under. 502, not API Gateway's
    // default 504: the function answered, badly; it did not time out.
    GatewayResponse {
        response_type: "INTEGRATION_FAILURE",
        status: Some(502),
        code: "internal_error",
        message: "internal error",
    },
];

impl GatewayResponse {
    /// The row for `response_type`; panics on a type the table does not list, which is a bug
    /// in the caller (the local server names only listed types, a test checks each).
    pub fn get(response_type: &str) -> &'static GatewayResponse {
        GATEWAY_RESPONSES
            .iter()
            .find(|r| r.response_type == response_type)
            .unwrap_or_else(|| panic!("no gateway response {response_type} in the table"))
    }

    /// The mapping template API Gateway gets: [`TEMPLATE`] with this row's code and message,
    /// `$context.requestId` still in it.
    pub fn template(&self) -> String {
        TEMPLATE
            .replace("{code}", self.code)
            .replace("{message}", self.message)
    }

    /// The body API Gateway sends for this row on request `request_id`: the template with its
    /// `$context` variables substituted, as API Gateway does.
    pub fn body(&self, request_id: &str) -> String {
        substitute(&self.template(), request_id)
    }

    /// The headers API Gateway sends for this row on request `request_id`.
    pub fn headers(request_id: &str) -> Vec<(&'static str, String)> {
        HEADERS
            .iter()
            .map(|(name, expression)| (*name, context_value(expression, request_id)))
            .collect()
    }
}

/// Replaces every `$context.<name>` the template uses with its value for one request.
fn substitute(template: &str, request_id: &str) -> String {
    template.replace(
        "$context.requestId",
        &context_value("context.requestId", request_id),
    )
}

/// The value of a `context.<name>` mapping expression for one request. Only the variables the
/// template and headers use are known; a test fails if either starts using another one.
fn context_value(expression: &str, request_id: &str) -> String {
    if let Some(literal) = expression
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return literal.to_owned();
    }
    match expression {
        "context.requestId" => request_id.to_owned(),
        other => panic!("gateway responses use {other}, which the local rendering does not know"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_renders_the_documented_shape() {
        for row in GATEWAY_RESPONSES {
            let body: serde_json::Value = serde_json::from_str(&row.body("req-1"))
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", row.response_type));
            assert_eq!(
                body,
                serde_json::json!({"error": {"code": row.code, "message": row.message, "request_id": "req-1"}}),
                "{}",
                row.response_type
            );
            assert!(
                row.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}: code is not snake_case",
                row.response_type
            );
            assert!(
                !row.message.contains(['"', '\\', '$', '#']),
                "{}: the message must not need escaping in JSON or VTL",
                row.response_type
            );
        }
    }

    #[test]
    fn the_template_uses_only_known_context_variables() {
        let rest = TEMPLATE.replace("$context.requestId", "");
        assert!(!rest.contains('$'), "unknown variable in {TEMPLATE}");
        assert_eq!(
            GatewayResponse::headers("abc"),
            vec![
                ("x-request-id", "abc".to_owned()),
                ("cache-control", "no-store".to_owned())
            ]
        );
    }

    #[test]
    fn types_are_unique_and_specific_ones_have_a_status() {
        let mut seen = std::collections::BTreeSet::new();
        for row in GATEWAY_RESPONSES {
            assert!(
                seen.insert(row.response_type),
                "{} twice",
                row.response_type
            );
            assert_eq!(
                row.status.is_none(),
                row.response_type.starts_with("DEFAULT_"),
                "{}",
                row.response_type
            );
        }
    }
}
