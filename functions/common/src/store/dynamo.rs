//! Turning SDK failures into [`ServiceError`]s, and running transactions with the retries
//! DynamoDB asks for.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;

use crate::error::ServiceError;

/// Error codes DynamoDB uses for throttling. The SDK already retried them with backoff; if they
/// still reach us the client should back off too, so they become 429.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ThrottlingError",
];

/// Maps any SDK error: throttling to [`ServiceError::Throttled`], the rest to a logged fault.
pub(crate) fn sdk_error<E, R>(context: &'static str, error: SdkError<E, R>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if error
        .code()
        .is_some_and(|code| THROTTLING_CODES.contains(&code))
    {
        return ServiceError::Throttled;
    }
    ServiceError::internal(context, error)
}

pub(crate) fn built<T>(
    result: Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T, ServiceError> {
    result.map_err(|e| ServiceError::internal("build dynamodb request", e))
}

/// A condition that `attribute` still holds `generation` (its value placeholder is `:gen`).
/// Items from before generations existed have no attribute, which counts as generation 0.
pub(crate) fn generation_is(attribute: &str, generation: u64) -> String {
    if generation == 0 {
        format!("(attribute_not_exists({attribute}) OR {attribute} = :gen)")
    } else {
        format!("{attribute} = :gen")
    }
}

/// Why one item of a cancelled transaction failed, by position in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cancellation {
    /// The item's condition expression was false.
    ConditionFailed(usize),
    /// Another transaction was writing the same item; retrying may succeed.
    Conflict,
    /// Throttled inside the transaction.
    Throttled,
    /// Anything else: a fault.
    Other,
}

/// How many times a transaction cancelled by a concurrent transaction is retried.
const CONFLICT_RETRIES: u32 = 3;

/// Runs TransactWriteItems. A cancellation by a concurrent transaction is retried with a short
/// jittered backoff; a failed condition is returned as [`Cancellation::ConditionFailed`] with
/// the item's index so the caller can say which rule was broken.
pub(crate) async fn transact(
    client: &Client,
    context: &'static str,
    items: Vec<TransactWriteItem>,
) -> Result<Result<(), Cancellation>, ServiceError> {
    let mut attempt = 0;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Ok(())),
            Err(error) => error,
        };
        let cancellation = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                let codes: Vec<String> = if cancelled.cancellation_reasons().is_empty() {
                    codes_from_message(cancelled.message().unwrap_or_default())
                } else {
                    cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|reason| reason.code().unwrap_or("None").to_owned())
                        .collect()
                };
                classify(&codes)
            }
            _ => return Err(sdk_error(context, error)),
        };
        match cancellation {
            Cancellation::Conflict if attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
            Cancellation::Conflict => return Err(ServiceError::TransactionConflict),
            Cancellation::Throttled => return Err(ServiceError::Throttled),
            Cancellation::Other => return Err(ServiceError::internal(context, error)),
            failed @ Cancellation::ConditionFailed(_) => return Ok(Err(failed)),
        }
    }
}

fn classify(codes: &[String]) -> Cancellation {
    if let Some(index) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
        return Cancellation::ConditionFailed(index);
    }
    if codes.iter().any(|c| c == "TransactionConflict") {
        return Cancellation::Conflict;
    }
    if codes
        .iter()
        .any(|c| c == "ThrottlingError" || c == "ProvisionedThroughputExceeded")
    {
        return Cancellation::Throttled;
    }
    Cancellation::Other
}

/// Emulators that leave out `CancellationReasons` still list the codes in the message:
/// "Transaction cancelled, please refer cancellation reasons for specific reasons [A, B]".
fn codes_from_message(message: &str) -> Vec<String> {
    let Some(open) = message.rfind('[') else {
        return Vec::new();
    };
    let Some(close) = message[open..].find(']') else {
        return Vec::new();
    };
    message[open + 1..open + close]
        .split(',')
        .map(|code| code.trim().to_owned())
        .collect()
}

/// 10-40 ms, jittered from the OS RNG so that colliding writers do not collide again.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let mut byte = [0u8; 1];
    let jitter = getrandom::fill(&mut byte)
        .map(|()| u64::from(byte[0] % 10))
        .unwrap_or(5);
    Duration::from_millis(10 * u64::from(attempt) + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reasons_are_classified_by_position() {
        let codes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            classify(&codes(&["None", "ConditionalCheckFailed"])),
            Cancellation::ConditionFailed(1)
        );
        assert_eq!(
            classify(&codes(&["TransactionConflict", "None"])),
            Cancellation::Conflict
        );
        assert_eq!(
            classify(&codes(&["ThrottlingError", "None"])),
            Cancellation::Throttled
        );
        assert_eq!(classify(&codes(&["ValidationError"])), Cancellation::Other);
    }

    #[test]
    fn codes_can_be_read_from_the_message() {
        assert_eq!(
            codes_from_message(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"
            ),
            vec!["None".to_owned(), "ConditionalCheckFailed".to_owned()]
        );
        assert!(codes_from_message("no list").is_empty());
    }
}
