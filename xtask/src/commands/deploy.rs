//! `cargo xtask deploy`: from source to a running, verified stack (the pipeline
//! is `services::deploy`); prints what changed, where the API is and where the
//! time went.

use anyhow::Result;
use xshell::Shell;

use crate::base::env::Env;
use crate::base::{process, progress, signals};
use crate::cli::DeployArgs;
use crate::services::deploy::{self, Options, Report};

pub fn run(sh: &Shell, env: &Env, args: DeployArgs) -> Result<()> {
    // A cancelled or timed-out job's SIGINT/SIGTERM stops Terraform gracefully and rolls a
    // release back instead of killing everything mid-way.
    signals::install();
    let report = deploy::deploy(sh, env, &args.into())?;
    progress::finish(
        env.json,
        &serde_json::to_value(&report)?,
        summary(env, &report),
    );
    Ok(())
}

/// The few lines a person reads after a deploy: what each stack did, what was released,
/// where the API is, and where the time went (Terraform's own output is in the logs).
fn summary(env: &Env, report: &Report) -> String {
    let mut lines = Vec::new();
    for (stack, what) in &report.stacks {
        lines.push(format!("{stack:<10} {what}"));
    }
    if !report.changed_functions.is_empty() {
        lines.push(format!(
            "updated:   {}",
            report.changed_functions.join(", ")
        ));
    }
    if let Some(release) = &report.release {
        let moves: Vec<String> = release
            .functions
            .iter()
            .map(|(f, shift)| format!("{f} {} -> {}", shift.from, shift.to))
            .collect();
        lines.push(format!(
            "released:  {} ({})",
            moves.join(", "),
            release.strategy
        ));
    }
    if let Some(url) = &report.api_url {
        lines.push(format!("API URL:   {url}"));
    }
    if let Some(url) = &report.local_api_url {
        lines.push(format!("local API: {url}"));
    }
    lines.push(format!(
        "outputs:   {}",
        process::display_path(&env.root, &env.outputs_file())
    ));
    let mut steps: Vec<(&String, &f64)> = report
        .timings
        .iter()
        .filter(|(step, seconds)| step.as_str() != "total" && **seconds >= 0.05)
        .collect();
    steps.sort_by(|a, b| b.1.total_cmp(a.1));
    let steps: Vec<String> = steps
        .iter()
        .map(|(step, seconds)| format!("{step} {seconds:.1} s"))
        .collect();
    lines.push(format!(
        "time:      {:.0} s in all; {}",
        report.timings.get("total").copied().unwrap_or_default(),
        steps.join(", ")
    ));
    lines.push(format!(
        "logs:      {}",
        process::display_path(&env.root, &env.dir().join("logs"))
    ));
    lines.join("\n")
}

impl From<DeployArgs> for Options {
    fn from(args: DeployArgs) -> Options {
        let DeployArgs {
            force,
            prebuilt,
            no_serve,
            hotswap,
            shift,
            smoke,
        } = args;
        Options {
            force,
            prebuilt,
            no_serve,
            hotswap,
            shift,
            smoke,
        }
    }
}
