//! `cargo xtask outputs`: the deployed stack's outputs, one by name or all of
//! them, sensitive ones masked unless asked for.

use anyhow::Result;
use serde_json::Value;

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::OutputsArgs;
use crate::services::stacks::outputs::{listing, one};

pub fn run(env: &Env, args: OutputsArgs) -> Result<()> {
    let outputs = listing(env)?;
    if let Some(name) = &args.name {
        let value = one(&outputs, name, args.show_sensitive)?;
        progress::finish(env.json, value, text(value));
        return Ok(());
    }
    let shown = if args.show_sensitive {
        outputs.values.clone()
    } else {
        outputs.masked()
    };
    let width = shown.keys().map(String::len).max().unwrap_or(0);
    let human = shown
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {}", text(v)))
        .collect::<Vec<_>>()
        .join("\n");
    progress::finish(env.json, &Value::Object(shown), human);
    Ok(())
}

/// A value as a shell reads it: strings without their quotes.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
