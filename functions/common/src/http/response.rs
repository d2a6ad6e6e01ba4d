//! Building responses: JSON bodies and the one documented error body.

use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use lambda_http::Body;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ServiceError;

/// The error body every failure is rendered as.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, in a stable code and a human message, with the request id to quote.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// snake_case, stable: clients switch on it.
    #[schema(example = "email_taken")]
    pub code: String,
    /// For humans; may change.
    pub message: String,
    /// Same as the `x-request-id` header and the `request_id` in the logs.
    pub request_id: String,
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response<Body>, ServiceError> {
    let body =
        serde_json::to_string(value).map_err(|e| ServiceError::internal("encode response", e))?;
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .map_err(|e| ServiceError::internal("build response", e))
}

/// An empty `204 No Content`.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// The error body for `error`, with `allow` on 405 and `retry-after` on a refused log-in.
pub fn error(error: &ServiceError, request_id: &str) -> Response<Body> {
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code().to_owned(),
            message: error.public_message(),
            request_id: request_id.to_owned(),
        },
    };
    let text = serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"));
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = error.status();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let ServiceError::MethodNotAllowed { allow } = error
        && let Ok(value) = HeaderValue::from_str(&allow_list(allow))
    {
        response.headers_mut().insert(ALLOW, value);
    }
    if let ServiceError::TooManyAttempts { retry_after } = error {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    response
}

/// `GET, POST` from a method list.
pub fn allow_list(methods: &[http::Method]) -> String {
    methods
        .iter()
        .map(http::Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
