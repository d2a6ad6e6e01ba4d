//! The one error type of the service and its one mapping to HTTP.
//!
//! Every failure a handler can produce is a [`ServiceError`]; [`ServiceError::status`] and
//! [`ServiceError::code`] are the only place that decides what a client sees, so status codes
//! and error codes cannot drift apart between functions.

use http::{Method, StatusCode};

/// Boxed source error for faults we report as 500 and log, never show.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The body is not JSON at all (syntax error, truncated, empty).
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A query parameter could not be understood.
    #[error("invalid query parameter `{name}`: {reason}")]
    InvalidQuery { name: &'static str, reason: String },
    /// The pagination cursor was not one this service issued.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// The body is JSON but has the wrong shape (types, missing or unknown fields).
    #[error("request body has the wrong shape: {0}")]
    InvalidBody(String),
    /// The body has the right shape but a value breaks a rule (e-mail syntax, lengths, ...).
    #[error("{field}: {reason}")]
    Validation { field: &'static str, reason: String },
    /// Request bodies must be `application/json`.
    #[error("content-type must be application/json")]
    UnsupportedMediaType,
    /// The body exceeds [`crate::http::MAX_BODY_BYTES`].
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// No, malformed, unknown or expired bearer token.
    #[error("a valid bearer token is required")]
    Unauthenticated,
    /// Log-in failed; deliberately the same for unknown e-mail and wrong password.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    /// Changing the e-mail or the password needs the current password, and it was missing or
    /// wrong. The same for both, and the session that sent it has ended.
    #[error("the current password is missing or wrong; log in again")]
    ReauthenticationFailed,
    /// Too many log-in attempts for this e-mail address in the current window.
    #[error("too many log-in attempts; retry in {retry_after} seconds")]
    TooManyAttempts { retry_after: u64 },
    /// Authenticated, but the token belongs to another user.
    #[error("the token does not grant access to this resource")]
    Forbidden,
    /// A CORS preflight from a browser origin the deployment does not allow.
    #[error("this origin may not call the API")]
    OriginNotAllowed,
    /// The addressed resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No route of this function matches the path.
    #[error("no route for this path")]
    RouteNotFound,
    /// The path exists but not with this method; `allow` lists the methods that do.
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<Method> },
    /// Another user already holds the e-mail address.
    #[error("the e-mail address is already registered")]
    EmailTaken,
    /// The client's `version` is not the stored one (optimistic concurrency).
    #[error("the resource was modified concurrently; re-read it and retry")]
    VersionConflict,
    /// DynamoDB kept cancelling our transaction because of concurrent transactions.
    #[error("a concurrent request touched the same data; retry")]
    TransactionConflict,
    /// DynamoDB throttled us after the SDK's own retries.
    #[error("too many requests; retry later")]
    Throttled,
    /// The deployment's configuration is unusable (start-up only).
    #[error("configuration variable {variable} {reason}")]
    Config {
        variable: &'static str,
        reason: String,
    },
    /// A real fault: the source is logged, the client gets a generic message.
    #[error("internal error: {context}")]
    Internal {
        context: &'static str,
        #[source]
        source: BoxError,
    },
}

impl ServiceError {
    /// Wraps a fault with a short description of the step that failed.
    pub fn internal(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Internal {
            context,
            source: source.into(),
        }
    }

    /// The HTTP status for this error: the single mapping every function uses.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::InvalidQuery { .. } | Self::InvalidCursor => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ReauthenticationFailed | Self::OriginNotAllowed => {
                StatusCode::FORBIDDEN
            }
            Self::NotFound(_) | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::EmailTaken | Self::VersionConflict | Self::TransactionConflict => {
                StatusCode::CONFLICT
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidBody(_) | Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Throttled | Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Config { .. } | Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable `error.code` clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::InvalidCursor => "invalid_cursor",
            Self::InvalidBody(_) => "invalid_body",
            Self::Validation { .. } => "validation_failed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Forbidden => "forbidden",
            Self::ReauthenticationFailed => "reauthentication_failed",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::NotFound(_) => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::EmailTaken => "email_taken",
            Self::VersionConflict => "version_conflict",
            Self::TransactionConflict => "transaction_conflict",
            Self::Throttled => "throttled",
            Self::Config { .. } | Self::Internal { .. } => "internal_error",
        }
    }

    /// The human-readable message for the client. Internal errors hide their cause: it may
    /// name tables or SDK internals, and it is in the log line with the same request id.
    pub fn public_message(&self) -> String {
        match self {
            Self::Config { .. } | Self::Internal { .. } => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_a_client_or_server_error() {
        let all = [
            ServiceError::MalformedJson("x".into()),
            ServiceError::InvalidQuery {
                name: "limit",
                reason: "x".into(),
            },
            ServiceError::InvalidCursor,
            ServiceError::InvalidBody("x".into()),
            ServiceError::Validation {
                field: "email",
                reason: "x".into(),
            },
            ServiceError::UnsupportedMediaType,
            ServiceError::PayloadTooLarge { limit: 1 },
            ServiceError::Unauthenticated,
            ServiceError::InvalidCredentials,
            ServiceError::Forbidden,
            ServiceError::ReauthenticationFailed,
            ServiceError::TooManyAttempts { retry_after: 5 },
            ServiceError::OriginNotAllowed,
            ServiceError::NotFound("user"),
            ServiceError::RouteNotFound,
            ServiceError::MethodNotAllowed { allow: vec![] },
            ServiceError::EmailTaken,
            ServiceError::VersionConflict,
            ServiceError::TransactionConflict,
            ServiceError::Throttled,
            ServiceError::internal("test", "boom"),
        ];
        for error in &all {
            let status = error.status().as_u16();
            assert!((400..=500).contains(&status), "{error:?} -> {status}");
            assert!(
                error
                    .code()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "code of {error:?} is not snake_case"
            );
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let error = ServiceError::internal("put item", "table prod-service-users is gone");
        assert_eq!(error.public_message(), "internal error");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn credentials_error_is_identical_for_both_causes() {
        // There is only one variant for unknown e-mail and wrong password; this pins its text.
        assert_eq!(
            ServiceError::InvalidCredentials.public_message(),
            "invalid e-mail or password"
        );
    }
}
