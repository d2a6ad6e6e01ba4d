//! `cargo xtask build`: the function binaries in release mode, for the
//! environment's architecture, checked for Lambda's OS.

use anyhow::Result;

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::cli::BuildArgs;
use crate::services::artifacts::{build, check};

pub fn run(env: &Env, args: BuildArgs) -> Result<()> {
    let binaries = build::compile(env)?;
    let reports = if args.no_check {
        Vec::new()
    } else {
        check::all(&binaries, env.arch)?
    };
    let json = serde_json::json!({
        "architecture": env.arch.lambda_name(),
        "binaries": binaries.paths.iter().map(|(name, path)| (name.to_string(), serde_json::json!({
            "path": process::display_path(&env.root, path),
            "bytes": std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        }))).collect::<serde_json::Map<_, _>>(),
        "checks": reports.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
    });
    let mut human = String::new();
    for (name, path) in &binaries.paths {
        human.push_str(&format!(
            "{name:<9} {}\n",
            process::display_path(&env.root, path)
        ));
    }
    for report in &reports {
        human.push_str(&format!("{report}\n"));
    }
    progress::finish(env.json, &json, human.trim_end());
    Ok(())
}
