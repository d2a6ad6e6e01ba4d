//! Lambda entry point (the binary is packaged as `bootstrap`).

use aws_config::BehaviorVersion;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use rotation::RotationEvent;

/// One thread: Secrets Manager invokes one step at a time, and the steps only wait on calls.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    service_common::logging::init();
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let client = &client;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<RotationEvent>| async move {
            rotation::handle(client, &event.payload)
            .await
            .map_err(|error| {
                // The step fails; Secrets Manager retries it and the rotation stays pending.
                let message = service_common::logging::error_chain(&error);
                tracing::error!(step = event.payload.step.name(), error = %message, "step failed");
                Diagnostic {
                    error_type: "RotationError".to_owned(),
                    error_message: message,
                }
            })
        },
    ))
    .await
}
