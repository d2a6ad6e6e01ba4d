//! One log line per DynamoDB call (`dynamodb call`: operation, table, duration, outcome), so
//! `cargo xtask trace` shows which AWS calls a request made and how long each took.
//!
//! It is an SDK interceptor on the one client every store shares, not code in each store:
//! `store/` stays the only code that builds requests, and no call can be forgotten. It logs
//! only names, times and error codes, never the request or the response (keys hold e-mail
//! addresses and token hashes, items hold password hashes).

use std::time::Instant;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

tokio::task_local! {
    /// Milliseconds spent in DynamoDB calls by the request being served (see [`timed`]).
    static DYNAMODB_MS: std::cell::Cell<f64>;
}

/// Runs `future` (a request) and returns what it returned with the milliseconds its DynamoDB
/// calls took, for the request's metrics. The request's future is boxed: nested in the scope
/// it would otherwise be copied onto the stack at each level, and the handlers' futures are
/// large enough for that to overflow a test thread's stack in debug builds.
pub async fn timed<F: std::future::Future>(future: F) -> (F::Output, f64) {
    let future = Box::pin(future);
    DYNAMODB_MS
        .scope(std::cell::Cell::new(0.0), async move {
            let output = future.await;
            (output, DYNAMODB_MS.with(std::cell::Cell::get))
        })
        .await
}

/// The DynamoDB client the functions use: `config`'s, with the call log.
pub fn dynamo_client(config: &aws_config::SdkConfig) -> Client {
    Client::from_conf(with_call_log(aws_sdk_dynamodb::config::Builder::from(
        config,
    )))
}

/// Adds the call log to a client configuration (tests build theirs for the emulator).
pub fn with_call_log(builder: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::Config {
    builder.interceptor(CallLog).build()
}

/// The interceptor: starts a clock before the call (retries included) and logs at its end.
#[derive(Debug)]
struct CallLog;

/// When the call started and which table it names, kept in the call's config bag.
#[derive(Debug, Clone)]
struct Started {
    at: Instant,
    table: Option<String>,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let table = table_of(context.input());
        cfg.interceptor_state().store_put(Started {
            at: Instant::now(),
            table,
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |metadata| metadata.name())
            .to_owned();
        let (duration_ms, table) = cfg.load::<Started>().map_or((0.0, None), |started| {
            (
                started.at.elapsed().as_secs_f64() * 1e3,
                started.table.clone(),
            )
        });
        let table = table.unwrap_or_default();
        let _ = DYNAMODB_MS.try_with(|total| total.set(total.get() + duration_ms));
        match context.output_or_error() {
            Some(Ok(_)) | None => tracing::info!(
                target: "service_common::calls",
                operation,
                table,
                duration_ms,
                outcome = "ok",
                "dynamodb call"
            ),
            Some(Err(error)) => {
                // The service's error code (`ConditionalCheckFailedException`) from the
                // response, or the kind of failure when there was no answer. Never the
                // message: a validation message can quote a key.
                let outcome = if error.is_connector_error() {
                    "connection error".to_owned()
                } else if error.is_timeout_error() {
                    "timeout".to_owned()
                } else {
                    context
                        .response()
                        .and_then(|response| response.body().bytes())
                        .and_then(error_code)
                        .unwrap_or_else(|| "error".to_owned())
                };
                // A failed condition is how the stores detect conflicts: not a fault.
                if outcome.starts_with("ConditionalCheckFailed")
                    || outcome.starts_with("TransactionCanceled")
                {
                    tracing::info!(
                        target: "service_common::calls",
                        operation, table, duration_ms, outcome, "dynamodb call"
                    );
                } else {
                    tracing::warn!(
                        target: "service_common::calls",
                        operation, table, duration_ms, outcome, "dynamodb call"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The table an operation's input names (several, comma-separated, for a transaction).
fn table_of(
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Option<String> {
    macro_rules! single {
        ($($module:ident :: $input:ident),*) => {
            $(
                if let Some(input) = input.downcast_ref::<operation::$module::$input>() {
                    return input.table_name().map(str::to_owned);
                }
            )*
        };
    }
    single!(
        get_item::GetItemInput,
        put_item::PutItemInput,
        update_item::UpdateItemInput,
        delete_item::DeleteItemInput,
        query::QueryInput,
        scan::ScanInput,
        describe_table::DescribeTableInput
    );
    if let Some(input) =
        input.downcast_ref::<operation::transact_write_items::TransactWriteItemsInput>()
    {
        let mut tables: Vec<&str> = input
            .transact_items()
            .iter()
            .filter_map(|item| {
                item.put()
                    .map(|p| p.table_name())
                    .or_else(|| item.update().map(|u| u.table_name()))
                    .or_else(|| item.delete().map(|d| d.table_name()))
                    .or_else(|| item.condition_check().map(|c| c.table_name()))
            })
            .collect();
        tables.sort_unstable();
        tables.dedup();
        return Some(tables.join(","));
    }
    None
}

/// The error code of a DynamoDB error body (`{"__type":"com.amazonaws...#Code",...}`).
fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("__type")?.as_str()?;
    Some(kind.rsplit('#').next().unwrap_or(kind).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_without_the_message() {
        let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
        assert_eq!(
            error_code(body).as_deref(),
            Some("ConditionalCheckFailedException")
        );
        assert_eq!(error_code(b"not json"), None);
    }
}
