//! A test function for the local server's tests: it answers with the event it got (and its
//! environment, process id and executable path, which tell which version's package runs), and
//! misbehaves on request, keyed by the `{id}` path parameter of `/users/{id}`:
//! `crash` exits the process mid-invocation, `hang` never answers, `fail` returns a handler
//! error, `invalid` returns a payload that is not a proxy response, `binary` answers with a
//! base64 body and multi-value headers, `hog` holds 200 MiB of resident memory for a moment
//! (more than the default 128 MB memory size) before it answers.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let id = payload["pathParameters"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match id.as_str() {
        "crash" => std::process::exit(3),
        "hang" => loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        },
        "fail" => Err("the handler failed on purpose".into()),
        "hog" => {
            // Every page written, so it is resident and not just reserved.
            let mut hog = vec![0u8; 200 << 20];
            for page in hog.chunks_mut(4096) {
                page[0] = 1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            Ok(
                json!({"statusCode": 200, "body": hog.iter().filter(|b| **b == 1).count().to_string()}),
            )
        }
        "invalid" => Ok(json!({"not": "a proxy response"})),
        "binary" => Ok(json!({
            "statusCode": 200,
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"], "content-type": ["application/octet-stream"]},
            "body": "AAEC/w==",
            "isBase64Encoded": true,
        })),
        _ => Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json!({
                "event": payload,
                "request_id": context.request_id,
                "deadline": context.deadline,
                "function_arn": context.invoked_function_arn,
                "env": std::env::vars().filter(|(k, _)| !k.contains("SECRET")).collect::<std::collections::BTreeMap<_, _>>(),
                "pid": std::process::id(),
                "exe": std::env::current_exe().ok().map(|p| p.display().to_string()),
            }).to_string(),
        })),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
