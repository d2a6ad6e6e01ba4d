//! Lambda entry point (the binary is packaged as `bootstrap`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// One thread: a batch is swept one record after another, each only waiting on calls.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    service_common::logging::init();
    let state: sweeper::State = service_common::state::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(sweeper::handle(state, event.payload).await)
    }))
    .await
}
