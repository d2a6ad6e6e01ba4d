//! `GET /health`: liveness and version; `?deep=true` also checks both tables.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::TableStatus;
use http::{Response, StatusCode};
use lambda_http::{Body, RequestExt as _};

use service_common::ServiceError;
use service_common::http::Call;
use service_common::http::response::{self, ErrorBody};
use service_common::logging::error_chain;

use crate::model::{CheckStatus, Health, HealthStatus};
use crate::{Op, State};

/// A dependency that does not answer within this time counts as unavailable; the function's
/// own timeout must not be what ends a health check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Liveness with the deployed version; with `deep=true`, `DescribeTable` on both tables.
#[utoipa::path(
    get,
    operation_id = "checkHealth",
    path = "/health",
    tag = "health",
    params(("deep" = Option<bool>, Query, description = "Also check the DynamoDB tables")),
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 400, description = "`invalid_query`: `deep` is not true or false", body = ErrorBody),
        (status = 503, description = "A dependency failed the deep check; `status` is `degraded`", body = Health),
    ),
    security((), ("api_key" = []))
)]
pub async fn check(state: &State, call: Call<Op>) -> Result<Response<Body>, ServiceError> {
    let deep = match call
        .request
        .query_string_parameters_ref()
        .and_then(|q| q.first("deep"))
    {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ServiceError::InvalidQuery {
                name: "deep",
                reason: "must be true or false".to_owned(),
            });
        }
    };
    let mut checks = BTreeMap::new();
    if deep {
        let (users, sessions) = tokio::join!(
            table_check(state, &state.config.users_table),
            table_check(state, &state.config.sessions_table)
        );
        checks.insert("users_table".to_owned(), users);
        checks.insert("sessions_table".to_owned(), sessions);
    }
    let healthy = checks.values().all(|check| *check == CheckStatus::Ok);
    let (status, code) = if healthy {
        (HealthStatus::Ok, StatusCode::OK)
    } else {
        (HealthStatus::Degraded, StatusCode::SERVICE_UNAVAILABLE)
    };
    let body = Health {
        status,
        version: state.config.service_version.clone(),
        checks,
    };
    response::json(code, &body)
}

async fn table_check(state: &State, table: &str) -> CheckStatus {
    let describe = state.dynamo.describe_table().table_name(table).send();
    match tokio::time::timeout(CHECK_TIMEOUT, describe).await {
        Ok(Ok(output)) => {
            let status = output.table.and_then(|t| t.table_status);
            match status {
                Some(TableStatus::Active | TableStatus::Updating) => CheckStatus::Ok,
                other => {
                    tracing::warn!(table, status = ?other, "table is not usable");
                    CheckStatus::Unavailable
                }
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(table, error = %error_chain(&error), "describe table failed");
            CheckStatus::Unavailable
        }
        Err(_) => {
            tracing::warn!(table, "describe table timed out");
            CheckStatus::Unavailable
        }
    }
}
