//! `cargo xtask invoke FUNCTION (--event FILE | --example NAME | --schedule [NAME])`: one event
//! sent straight to a function, its response and the log lines it wrote for that invocation
//! printed. `--schedule` runs a schedule now: the event is the one the schedule sends
//! (`catalog::schedules::event`), so the function cannot tell it from a run on the clock.
//!
//! On `local` it runs through the local runtime: the local API server's own Runtime API and
//! process handling (`local_api::instance`), with the configuration the server would use (the
//! alias's in the emulator, else derived from the outputs). The binary is the newest of the two
//! builds the local server knows: the `watch` build (`build/local/watch/<fn>/bootstrap`) when
//! it is newer than the package, else the packaged `bootstrap` of `build/dist/<fn>.zip`; so
//! `invoke` runs what `watch` or `deploy` last produced. The output is appended to the
//! function's log file, where `cargo xtask logs` reads it as on AWS.
//!
//! On an AWS environment (`--env NAME`) it invokes the deployed `live` alias with the Lambda
//! Invoke API; `LogType=Tail` returns the last 4 KB of the invocation's log, printed the same
//! way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine;
use bytes::Bytes;
use local_api::deployment::Deployment;
use local_api::function_env;
use local_api::instance::{Instance, InvokeError};

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::aliases::ALIAS;
use crate::services::{local, target};

/// The bundled events: API Gateway REST API (payload 1.0 proxy) and HTTP API (payload 2.0).
const EXAMPLES: [(&str, &str); 4] = [
    (
        "rest-get-health",
        include_str!("../../events/rest-get-health.json"),
    ),
    (
        "rest-post-users",
        include_str!("../../events/rest-post-users.json"),
    ),
    (
        "http-get-health",
        include_str!("../../events/http-get-health.json"),
    ),
    (
        "http-post-sessions",
        include_str!("../../events/http-post-sessions.json"),
    ),
];

/// What one invocation gave, whichever way it ran.
pub struct Invoked {
    /// The response payload, or the function's error.
    pub result: Result<serde_json::Value, String>,
    pub logs: Vec<String>,
    /// Where the code came from (a file locally, `name:live (version N)` on AWS).
    pub code: String,
    pub duration: Duration,
}

/// Sends `payload` to `function`: through the local runtime on an emulated environment, to
/// the deployed `live` alias otherwise.
pub fn invoke(env: &Env, function: &str, payload: Bytes) -> Result<Invoked> {
    if env.emulated {
        invoke_local(env, function, payload)
    } else {
        invoke_deployed(env, function, payload)
    }
}

/// The `--example` names that work for every function: an API Gateway REST (payload 1.0) or
/// HTTP API (payload 2.0) event for one of its declared routes, made from the bundled
/// `*-get-health` events with the method, path and path parameters changed.
const GENERATED: [(&str, &str); 2] = [("rest", "rest-get-health"), ("http", "http-get-health")];

/// What a path parameter is set to in a generated event.
const PATH_PARAMETER: &str = "example";

/// The event `--example name` sends to `function`: a bundled one, or a generated one
/// (`rest`, `http`) for `route` ("GET /items/{id}"; the function's first route by default).
pub fn example(function: &str, name: &str, route: Option<&str>) -> Result<String> {
    let bundled = |name: &str| EXAMPLES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
    let Some((_, template)) = GENERATED.iter().find(|(n, _)| *n == name) else {
        if route.is_some() {
            bail!("--route goes with a generated example: --example rest or --example http");
        }
        return bundled(name).map(str::to_owned).with_context(|| {
            format!(
                "no example event `{name}`; the examples are: {}",
                example_names().join(", ")
            )
        });
    };
    let declared = catalog::find(function)
        .with_context(|| format!("`{function}` declares no routes"))?
        .routes;
    let route = match route {
        None => &declared[0],
        Some(text) => {
            let wanted: Vec<&str> = text.split_whitespace().collect();
            declared
                .iter()
                .find(|r| {
                    wanted.len() == 2
                        && wanted[0].eq_ignore_ascii_case(r.method)
                        && wanted[1] == r.path
                })
                .with_context(|| {
                    let routes: Vec<String> = declared
                        .iter()
                        .map(|r| format!("\"{} {}\"", r.method, r.path))
                        .collect();
                    format!(
                        "{function} does not serve `{text}`; its routes are {}",
                        routes.join(", ")
                    )
                })?
        }
    };
    let mut event: serde_json::Value =
        serde_json::from_str(bundled(template).context("the template is bundled")?)?;
    let mut parameters = serde_json::Map::new();
    let path: Vec<String> = route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    parameters.insert(name.to_owned(), PATH_PARAMETER.into());
                    PATH_PARAMETER.to_owned()
                }
                None => segment.to_owned(),
            },
        )
        .collect();
    let path = path.join("/");
    let parameters = (!parameters.is_empty()).then_some(serde_json::Value::Object(parameters));
    let route_key = format!("{} {}", route.method, route.path);
    if name == "rest" {
        event["resource"] = route.path.into();
        event["path"] = path.clone().into();
        event["httpMethod"] = route.method.into();
        event["pathParameters"] = parameters.into();
        let context = &mut event["requestContext"];
        context["resourcePath"] = route.path.into();
        context["httpMethod"] = route.method.into();
        context["path"] = format!("/{}{path}", context["stage"].as_str().unwrap_or("v1")).into();
    } else {
        event["routeKey"] = route_key.clone().into();
        event["rawPath"] = path.clone().into();
        if let Some(parameters) = parameters {
            event["pathParameters"] = parameters;
        }
        let context = &mut event["requestContext"];
        context["routeKey"] = route_key.into();
        context["http"]["method"] = route.method.into();
        context["http"]["path"] = path.into();
    }
    Ok(event.to_string())
}

/// The `--example` names: the generated kinds, then the bundled events, then the schedule's.
pub fn example_names() -> Vec<&'static str> {
    GENERATED
        .iter()
        .map(|(name, _)| *name)
        .chain(EXAMPLES.iter().map(|(name, _)| *name))
        .chain([SCHEDULE_EXAMPLE])
        .collect()
}

/// The `--example` that is the function's schedule's event: `--schedule` without a name.
pub const SCHEDULE_EXAMPLE: &str = "schedule";

/// The event `function`'s schedule `name` (its only one when `None`) sends, for a run now:
/// the local clock's (`local_api::schedules::event`: a fresh execution id, now as its time,
/// the schedule's ARN in the deployment of `env`'s outputs), so a run on demand is a run on
/// the clock, locally and on AWS.
pub fn schedule_event(env: &Env, function: &str, name: Option<&str>) -> Result<String> {
    let declared = catalog::find(function)
        .with_context(|| format!("`{function}` is not a function of the catalog"))?
        .schedules;
    let schedule = choose(function, declared, name)?;
    let deployment = Deployment::load(&env.outputs_file())?;
    Ok(local_api::schedules::event(
        &deployment,
        schedule,
        chrono::Utc::now(),
    ))
}

/// The schedule `name` among `function`'s, or its only one; refused naming what there is.
fn choose<'a>(
    function: &str,
    declared: &'a [catalog::Schedule],
    name: Option<&str>,
) -> Result<&'a catalog::Schedule> {
    let names = || -> String {
        let names: Vec<&str> = declared.iter().map(|s| s.name).collect();
        names.join(", ")
    };
    match (declared, name) {
        ([], _) => {
            let scheduled: Vec<&str> = catalog::schedules().map(|(f, _)| f.name).collect();
            bail!(
                "`{function}` has no schedule; the functions with one are: {}",
                if scheduled.is_empty() {
                    "none".to_owned()
                } else {
                    scheduled.join(", ")
                }
            )
        }
        ([only], None) => Ok(only),
        (_, None) => bail!(
            "`{function}` has several schedules ({}): name one, --schedule NAME",
            names()
        ),
        (_, Some(wanted)) => declared.iter().find(|s| s.name == wanted).with_context(|| {
            format!(
                "`{function}` has no schedule `{wanted}`; its schedules are: {}",
                names()
            )
        }),
    }
}

/// Runs the function once through the local runtime.
fn invoke_local(env: &Env, function: &str, payload: Bytes) -> Result<Invoked> {
    let deployment = Deployment::load(&env.outputs_file())?;
    let endpoint = match local::running_moto(env) {
        Some(moto) => moto.endpoint,
        None => {
            progress::note(
                "the emulator is not running: the function's configuration comes from the \
                 outputs file and its AWS calls fail (`cargo xtask local up` starts it)",
            );
            // The discard port: nothing listens, so AWS calls fail at once.
            "http://127.0.0.1:9".to_owned()
        }
    };
    let work = env.dir().join("invoke");
    let binary = local_binary(env, &work, function)?;
    let code = process::display_path(&env.root, &binary);
    process::block_on(async move {
        let name = deployment.functions[function].clone();
        let lambda = function_env::lambda_client(&endpoint, &deployment.region);
        let (deployed, source) = function_env::read_fallback(&lambda, &deployment, &name).await;
        let mut spec = function_env::spec(
            &deployment,
            &endpoint,
            &work,
            function,
            binary,
            &deployed,
            source,
        );
        // The local server's log file of the function, so `logs` shows this invocation too.
        spec.log_file = local_log_file(env, function);
        if let Some(dir) = spec.log_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let log_file = spec.log_file.clone();
        let offset = std::fs::metadata(&log_file).map_or(0, |m| m.len());
        let started = Instant::now();
        let instance = Instance::spawn(Arc::new(spec))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let result = instance.invoke(&request_id(), payload).await;
        let duration = started.elapsed();
        // Its lines are in the file already (stdout is line-buffered); stop the process.
        drop(instance);
        let result = match result {
            Ok(body) => serde_json::from_slice(&body).map_err(|e| {
                format!(
                    "the response is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                )
            }),
            Err(InvokeError::FunctionError(body)) => Err(body),
            Err(other) => Err(other.to_string()),
        };
        Ok(Invoked {
            result,
            logs: lines_since(&log_file, offset)?,
            code,
            duration,
        })
    })
}

/// `build/<env>/functions/<fn>/output.log`: where the local API server writes the function's
/// output (`local_api::function_env::FunctionSpec::log_file`), read by `logs` on `local`.
pub fn local_log_file(env: &Env, function: &str) -> PathBuf {
    env.dir()
        .join("functions")
        .join(function)
        .join("output.log")
}

/// The watch build when it is newer than the package, else the package's `bootstrap`
/// extracted under `work`.
fn local_binary(env: &Env, work: &Path, function: &str) -> Result<PathBuf> {
    let zip = local_api::package::dist_zip(&env.dist(), function);
    let watch = local_api::traffic::watch_bootstrap(&env.dir().join("watch"), function);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&watch), modified(&zip)) {
        (Some(w), Some(z)) if w >= z => Ok(watch),
        (Some(_), None) => Ok(watch),
        (_, Some(_)) => local_api::package::extract_bootstrap(&env.dist(), work, function),
        (None, None) => bail!(
            "no build of {function}: neither {} nor {}; run `cargo xtask deploy` or `cargo xtask watch`",
            process::display_path(&env.root, &zip),
            process::display_path(&env.root, &watch)
        ),
    }
}

/// The complete lines appended to `path` after `offset`.
fn lines_since(path: &Path, offset: u64) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[start..])
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// A unique request (or schedule execution) id in the UUID shape Lambda uses.
fn request_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let hex = format!("{:020x}{:012x}", nanos, std::process::id());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Invokes the deployed `live` alias with `LogType=Tail`.
fn invoke_deployed(env: &Env, function: &str, payload: Bytes) -> Result<Invoked> {
    let (target, _moto) = target::target(env)?;
    let name = env.function_name(function);
    process::block_on(async move {
        let lambda = target.lambda().await;
        let started = Instant::now();
        let output = lambda
            .invoke()
            .function_name(&name)
            .qualifier(ALIAS)
            .log_type(aws_sdk_lambda::types::LogType::Tail)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_vec()))
            .send()
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "invoking {name}:{ALIAS}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&err)
                )
            })?;
        let duration = started.elapsed();
        let tail = output
            .log_result()
            .map(|b64| base64::engine::general_purpose::STANDARD.decode(b64))
            .transpose()
            .context("the log tail is not base64")?
            .unwrap_or_default();
        let body = output.payload().map(|b| b.as_ref()).unwrap_or_default();
        let result = match output.function_error() {
            Some(kind) => Err(format!("{kind}: {}", String::from_utf8_lossy(body))),
            None => serde_json::from_slice(body).map_err(|e| {
                format!(
                    "the response is not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            }),
        };
        Ok(Invoked {
            result,
            logs: String::from_utf8_lossy(&tail)
                .lines()
                .map(str::to_owned)
                .collect(),
            code: format!(
                "{name}:{ALIAS} (version {})",
                output.executed_version().unwrap_or("?")
            ),
            duration,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_an_api_gateway_event() {
        for (name, text) in EXAMPLES {
            let event: serde_json::Value = serde_json::from_str(text).unwrap();
            let version_2 = event["version"] == "2.0";
            assert_eq!(name.starts_with("http-"), version_2, "{name}");
            let method = if version_2 {
                &event["requestContext"]["http"]["method"]
            } else {
                &event["httpMethod"]
            };
            let expected = name.split('-').nth(1).unwrap().to_uppercase();
            assert_eq!(method.as_str(), Some(expected.as_str()), "{name}");
        }
    }

    #[test]
    fn generated_examples_are_events_for_a_declared_route() {
        let to_json = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
        let rest = to_json(example("users", "rest", Some("patch /users/{id}")).unwrap());
        assert_eq!(rest["httpMethod"], "PATCH");
        assert_eq!(rest["resource"], "/users/{id}");
        assert_eq!(rest["path"], "/users/example");
        assert_eq!(rest["pathParameters"]["id"], "example");
        assert_eq!(rest["requestContext"]["path"], "/v1/users/example");
        let http = to_json(example("health", "http", None).unwrap());
        assert_eq!(http["routeKey"], "GET /health");
        assert_eq!(http["requestContext"]["http"]["method"], "GET");
        let e = example("users", "rest", Some("GET /nowhere"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("users does not serve `GET /nowhere`; its routes are \"POST /users\""),
            "{e}"
        );
        let e = example("health", "rest-get-health", Some("GET /health"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--route goes with a generated example"), "{e}");
        let e = example("health", "soap", None).unwrap_err().to_string();
        assert!(
            e.contains("the examples are: rest, http, rest-get-health"),
            "{e}"
        );
        assert!(e.ends_with(", schedule"), "{e}");
    }

    #[test]
    fn a_schedule_is_chosen_by_name_or_alone() {
        let declared = [
            catalog::Schedule {
                name: "nightly",
                expression: "cron(0 3 * * ? *)",
                input: r#"{"report":"all"}"#,
            },
            catalog::Schedule {
                name: "hourly",
                expression: "rate(1 hour)",
                input: "{}",
            },
        ];
        let chosen = choose("reports", &declared, Some("hourly")).unwrap();
        assert_eq!(chosen.name, "hourly");
        let only = choose("reports", &declared[..1], None).unwrap();
        assert_eq!(only.name, "nightly");
        let e = choose("reports", &declared, None).unwrap_err().to_string();
        assert!(e.contains("several schedules (nightly, hourly)"), "{e}");
        let e = choose("reports", &declared, Some("weekly"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no schedule `weekly`; its schedules are: nightly, hourly"),
            "{e}"
        );
        let env = Env::load("local", false).unwrap();
        let e = schedule_event(&env, "health", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`health` has no schedule; the functions with one are: "),
            "{e}"
        );
    }
}
