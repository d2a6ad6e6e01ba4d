//! Lambda entry point (the binary is packaged as `bootstrap`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};

/// One thread: a report is two calls, one after the other.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    service_common::logging::init();
    let state: table_report::State = service_common::state::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            table_report::handle(state, &event.context.request_id, event.payload)
                .await
                .map_err(|error| Diagnostic {
                    error_type: "TableReportError".to_owned(),
                    error_message: error.to_string(),
                })
        },
    ))
    .await
}
