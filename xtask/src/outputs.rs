//! `cargo xtask outputs`: the deployed stack's outputs, from
//! `build/<env>/outputs.json` (written by deploy; read by smoke and the local
//! API server, so everyone sees the same values).

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use xshell::Shell;

use crate::cli::OutputsArgs;
use crate::env::Env;
use crate::{process, progress};

/// Outputs whose values are secrets, masked unless asked for.
const SENSITIVE: &[&str] = &["api_key_value"];

pub fn run(_sh: &Shell, env: &Env, args: OutputsArgs) -> Result<()> {
    let outputs = load(env)?;
    if let Some(name) = &args.name {
        let value = outputs.get(name).with_context(|| {
            format!(
                "no output `{name}`; outputs: {}",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        progress::result(env, value, text);
        return Ok(());
    }
    let shown: Map<String, Value> = outputs
        .iter()
        .map(|(k, v)| {
            let masked = SENSITIVE.contains(&k.as_str()) && !args.show_sensitive;
            (
                k.clone(),
                if masked {
                    Value::String("(sensitive; --show-sensitive)".into())
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let width = shown.keys().map(String::len).max().unwrap_or(0);
    let human = shown
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k:<width$}  {s}"),
            other => format!("{k:<width$}  {other}"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    progress::result(env, &Value::Object(shown), human);
    Ok(())
}

/// Writes the flat `{name: value}` outputs.
pub fn save(env: &Env, outputs: &Map<String, Value>) -> Result<()> {
    process::write_json(&env.outputs_file(), outputs)
}

pub fn load(env: &Env) -> Result<Map<String, Value>> {
    let path = env.outputs_file();
    if !path.exists() {
        bail!(
            "`{}` has not been deployed from this machine ({} is missing): run `cargo xtask deploy --env {}`",
            env.name,
            process::display_path(&env.root, &path),
            env.name
        );
    }
    process::read_json(&path)
}
