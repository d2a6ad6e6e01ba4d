//! One cold start of a release binary, from the process's start to its first response: the
//! local API server's execution environment (its Runtime API and process supervision,
//! `local_api::instance`) hands the binary a REST (v1) event for the probe route
//! ([`super::probe`]); the other functions answer it as a route they do not serve, which takes
//! them no longer, and a function without routes (a queue worker, a scheduled job, the rotation
//! function) answers with its runtime's error for an event it does not take: also its first
//! answer after the start, without the handler's own work.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use local_api::function_env::{ConfigSource, FunctionSpec};
use local_api::instance::{Instance, InvokeError};

use crate::base::env::Env;
use crate::base::process;

/// The memory size the cold starts run with (a process that outgrows it is killed).
const BENCH_MEMORY_MB: u64 = 256;

/// The median of `iterations` cold starts of `function`'s `binary`, in seconds.
pub fn median_seconds(env: &Env, function: &str, binary: &Path, iterations: usize) -> Result<f64> {
    let route = super::probe()?.1;
    let mut samples = Vec::new();
    for _ in 0..iterations.max(1) {
        samples.push(cold_start(env, function, binary, route)?.as_secs_f64());
    }
    Ok(super::median(&mut samples))
}

fn cold_start(
    env: &Env,
    function: &str,
    binary: &Path,
    route: &catalog::Route,
) -> Result<Duration> {
    let name = env.function_name(function);
    let mut variables = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
            "$LATEST".to_owned(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            BENCH_MEMORY_MB.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".to_owned(),
            format!("/aws/lambda/{name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".to_owned(), "bench".to_owned()),
        ("AWS_REGION".to_owned(), env.region.clone()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
        // Nothing listens here: a function that calls AWS at start fails fast.
        (
            "AWS_ENDPOINT_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
    ];
    variables.extend(catalog::tables::ALL.iter().map(|table| {
        (
            catalog::tables::variable(table.logical),
            format!("{}{}", env.prefix, table.logical),
        )
    }));
    let log_file = env.dir().join("logs").join(format!("bench-{function}.log"));
    std::fs::create_dir_all(env.dir().join("logs"))?;
    let spec = FunctionSpec {
        short: function.to_owned(),
        arn: format!("arn:aws:lambda:{}:123456789012:function:{name}", env.region),
        name,
        version: "$LATEST".to_owned(),
        bootstrap: binary.to_path_buf(),
        env: variables.into_iter().collect(),
        timeout: Duration::from_secs(30),
        memory_mb: BENCH_MEMORY_MB,
        log_file,
        source: ConfigSource::Outputs("the benchmark".to_owned()),
    };
    process::block_on(async {
        let started = Instant::now();
        let instance = Instance::spawn(Arc::new(spec))
            .await
            .map_err(|e| anyhow!("starting {}: {e}", binary.display()))?;
        match instance
            .invoke("bench-request-1", event(route).to_string().into())
            .await
        {
            Ok(_) => Ok(started.elapsed()),
            // Its runtime's own answer to an event it does not take: it came after the
            // process started and read the event, as a response would.
            Err(InvokeError::FunctionError(_)) if !takes_api_events(function) => {
                Ok(started.elapsed())
            }
            Err(InvokeError::Timeout) => {
                bail!("{function} did not answer its first invocation within 30 s")
            }
            Err(err) => bail!("{function} reported an error instead of a response: {err}"),
        }
    })
}

/// Whether `function` serves routes, so must answer the API event with a response.
fn takes_api_events(function: &str) -> bool {
    catalog::find(function).is_some_and(|f| !f.routes.is_empty())
}

/// An API Gateway REST (v1) proxy event for `route` (a GET without path parameters), stage
/// `v1`.
fn event(route: &catalog::Route) -> serde_json::Value {
    let path = route.path;
    serde_json::json!({
        "resource": path,
        "path": path,
        "httpMethod": route.method,
        "headers": { "accept": "application/json", "host": "bench.execute-api.us-east-1.amazonaws.com" },
        "multiValueHeaders": { "accept": ["application/json"], "host": ["bench.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "resourceId": "bench", "resourcePath": path, "httpMethod": route.method,
            "path": format!("/v1{path}"), "stage": "v1", "requestId": "bench-request-1",
            "accountId": "123456789012", "apiId": "bench", "protocol": "HTTP/1.1",
            "requestTimeEpoch": 0, "extendedRequestId": "bench",
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "xtask-bench" }
        },
        "body": null,
        "isBase64Encoded": false
    })
}
