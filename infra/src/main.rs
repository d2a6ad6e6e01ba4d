//! `infra synth --env NAME [--out DIR]`: writes the Terraform JSON for one environment.
//! Argument parsing is by hand: two flags do not justify a parser dependency in a binary whose
//! start-up time and memory are benchmarked.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "infra synth --env NAME [--out DIR]   (environments: local, dev, prod)";

fn run() -> Result<(), infra::Error> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("synth") {
        return Err(infra::Error::Usage(USAGE.into()));
    }
    let mut env = None;
    let mut out = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--env" => env = args.next(),
            "--out" => out = args.next().map(PathBuf::from),
            "-h" | "--help" => return Err(infra::Error::Usage(USAGE.into())),
            other => {
                return Err(infra::Error::Usage(format!(
                    "unexpected argument {other:?}; {USAGE}"
                )));
            }
        }
    }
    let env = env.ok_or_else(|| infra::Error::Usage(format!("--env is required; {USAGE}")))?;
    let out = out.unwrap_or_else(infra::synth::default_out_dir);
    let output = infra::synth(&env, &out)?;
    for ((name, dir), count) in output.stacks.iter().zip(&output.resource_counts) {
        println!(
            "{name}: {count} resources -> {}",
            dir.join("cdk.tf.json").display()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("infra: {e}");
            ExitCode::FAILURE
        }
    }
}
