//! `cargo xtask invoke FUNCTION (--event FILE | --example NAME | --schedule [NAME])`: one event
//! sent straight to a function (locally through the local runtime, on AWS to the `live` alias),
//! with its response and the log lines of that invocation.

use anyhow::{Context, Result, bail};
use bytes::Bytes;

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::InvokeArgs;
use crate::services::functions;
use crate::services::invoke::{self, SCHEDULE_EXAMPLE, example, example_names, schedule_event};

pub fn run(env: &Env, args: InvokeArgs) -> Result<()> {
    let function = functions::known(&args.function)?;
    let payload = event(env, function, &args)?;
    let invoked = invoke::invoke(env, function, payload)?;
    let json = serde_json::json!({
        "function": function,
        "code": invoked.code,
        "duration_ms": invoked.duration.as_millis() as u64,
        "response": invoked.result.as_ref().ok(),
        "error": invoked.result.as_ref().err(),
        "logs": invoked.logs,
    });
    let mut human = vec![format!(
        "{function} ({}) answered in {} ms",
        invoked.code,
        invoked.duration.as_millis()
    )];
    human.push("log lines:".to_owned());
    human.extend(invoked.logs.iter().map(|line| format!("  {line}")));
    match &invoked.result {
        Ok(response) => {
            human.push("response:".to_owned());
            human.push(serde_json::to_string_pretty(response)?);
            progress::finish(env.json, &json, human.join("\n"));
            Ok(())
        }
        Err(error) => {
            progress::finish(env.json, &json, human.join("\n"));
            bail!("{function} failed: {error}")
        }
    }
}

/// The event to send, parsed so a typo fails here and not inside the function.
fn event(env: &Env, function: &str, args: &InvokeArgs) -> Result<Bytes> {
    let schedule = |name: Option<&str>| schedule_event(env, function, name);
    let (text, origin) = match (&args.event, &args.example, &args.schedule) {
        (Some(file), None, None) => (
            std::fs::read_to_string(file)
                .with_context(|| format!("reading the event file {}", file.display()))?,
            file.display().to_string(),
        ),
        (None, None, Some(name)) => (schedule(name.as_deref())?, "the schedule's event".into()),
        (None, Some(name), None) if name == SCHEDULE_EXAMPLE && args.route.is_none() => {
            (schedule(None)?, format!("example `{name}`"))
        }
        (None, Some(name), None) => (
            example(function, name, args.route.as_deref())?,
            format!("example `{name}`"),
        ),
        _ => bail!(
            "give the event with --event FILE, --example NAME (examples: {}) or --schedule",
            example_names().join(", ")
        ),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{origin} is not JSON"))?;
    Ok(Bytes::from(serde_json::to_vec(&value)?))
}
