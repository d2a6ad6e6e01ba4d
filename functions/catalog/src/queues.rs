//! The rules for a queue a function consumes (`[[package.metadata.function.queues]]`) and the
//! names and numbers derived from it. Kept here, beside the declarations, so the catalog
//! refuses a name that would make an invalid SQS name or variable and a setting outside SQS's
//! and Lambda's ranges.

use std::ops::RangeInclusive;

/// The longest name: with the longest prefix (20), `queue-` and the dead-letter queue's
/// `-dlq`, the SQS name stays inside its 80 characters.
pub const MAX_LEN: usize = 40;

/// Records per invocation: the event source mapping's range for a standard queue.
pub const BATCH_SIZE: RangeInclusive<u32> = 1..=10_000;
/// Above this batch size Lambda requires a batching window of at least a second.
pub const BATCH_SIZE_WITHOUT_WINDOW: u32 = 10;
/// Seconds the poller may wait to fill a batch (`MaximumBatchingWindowInSeconds`).
pub const BATCHING_WINDOW_SECONDS: RangeInclusive<u32> = 0..=300;
/// Receives before a message moves to the dead-letter queue (the redrive policy's
/// `maxReceiveCount`, SQS's range).
pub const MAX_RECEIVES: RangeInclusive<u32> = 1..=1000;
/// `max_receives` when the declaration says nothing: a poison message costs three attempts.
pub const DEFAULT_MAX_RECEIVES: u32 = 3;

/// Checks a queue name: 1-40 of a-z, 0-9 and single hyphens, starting with a letter, not
/// ending in a hyphen (so the variable's `_` maps back to exactly one name).
pub fn check_name(name: &str) -> Result<(), String> {
    if !crate::names::is_kebab(name, MAX_LEN) {
        return Err(format!(
            "queue `{name}`: use 1-{MAX_LEN} characters of a-z, 0-9 and single '-', starting \
             with a letter and not ending with '-' (it becomes the SQS name \
             `<prefix>{}` and the variable {})",
            aws_suffix(name),
            variable(name)
        ));
    }
    // The outputs name a queue's dead-letter queue `queue_<name>_dead_letter_url`: a queue
    // called `x-dead-letter` would read as `x`'s.
    if name.ends_with("-dead-letter") {
        return Err(format!(
            "queue `{name}`: a name may not end with `-dead-letter` (the stack's outputs use it \
             for each queue's dead-letter queue)"
        ));
    }
    Ok(())
}

/// The environment variable that hands a sending function the queue's URL:
/// `session-sweeps` -> `QUEUE_URL_SESSION_SWEEPS`.
pub fn variable(name: &str) -> String {
    format!("QUEUE_URL_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The queue's name in SQS, after the environment's prefix; its dead-letter queue adds
/// [`DEAD_LETTER_SUFFIX`].
pub fn aws_suffix(name: &str) -> String {
    format!("queue-{name}")
}

/// Appended to a queue's SQS name for its dead-letter queue.
pub const DEAD_LETTER_SUFFIX: &str = "-dlq";

/// The alarm on the queue's dead-letter queue holding any message, after the environment's
/// prefix: infra creates it, and the local API server sets it as CloudWatch would on `local`,
/// where the emulator evaluates no metric.
pub fn dead_letter_alarm(name: &str) -> String {
    format!("{}-dead-letters", aws_suffix(name))
}

/// The queue's visibility timeout for a consumer with this timeout: AWS advises at least six
/// times the function's timeout plus the batching window, so a batch Lambda retries after a
/// throttle is not visible again while a first attempt may still run.
pub fn visibility_timeout_seconds(function_timeout_seconds: u32, batching_window: u32) -> u32 {
    6 * function_timeout_seconds + batching_window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_one_variable_and_fit_sqs() {
        assert_eq!(variable("session-sweeps"), "QUEUE_URL_SESSION_SWEEPS");
        assert_eq!(aws_suffix("session-sweeps"), "queue-session-sweeps");
        check_name("session-sweeps").unwrap();
        check_name(&"a".repeat(MAX_LEN)).unwrap();
        for bad in [
            "",
            "Jobs",
            "1jobs",
            "a_b",
            "a--b",
            "jobs-",
            &"a".repeat(MAX_LEN + 1),
        ] {
            assert!(
                check_name(bad).unwrap_err().contains("1-40 characters"),
                "{bad}"
            );
        }
        assert!(
            check_name("jobs-dead-letter")
                .unwrap_err()
                .contains("may not end")
        );
        let longest = format!(
            "{}{}{DEAD_LETTER_SUFFIX}",
            "p".repeat(20),
            aws_suffix(&"a".repeat(MAX_LEN))
        );
        assert!(longest.len() <= 80, "{}", longest.len());
        assert_eq!(visibility_timeout_seconds(30, 5), 185);
    }
}
