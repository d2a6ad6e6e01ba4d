//! `cargo xtask compare`: what this checkout changes in an environment's stacks against a base
//! commit's synthesized ones (the work is `services::compare`); a summary, `--json`, or with
//! `--markdown` the pull request comment the stage workflow posts.

use anyhow::{Result, bail};

use crate::base::env::Env;
use crate::base::progress;
use crate::cli::CompareArgs;
use crate::services::compare;

pub fn run(env: &Env, args: CompareArgs) -> Result<()> {
    if args.markdown && env.json {
        bail!("--markdown and --json each choose the output: pass one");
    }
    let base = compare::read_synthesized(&args.base)?;
    let head = compare::synthesize(&env.name)?;
    let comparison = compare::compare(&env.name, &base, &head);
    if args.markdown {
        print!("{}", comparison.markdown());
        return Ok(());
    }
    let mut human = format!(
        "`{}`: {} added, {} changed, {} removed; {} IAM statement(s) widen access\n\
         idle per month ${:.2} -> ${:.2}; per million requests ${:.2} -> ${:.2}",
        comparison.env,
        comparison.added.len(),
        comparison.changed.len(),
        comparison.removed.len(),
        comparison.widened.len(),
        comparison.base_cost.idle_per_month,
        comparison.head_cost.idle_per_month,
        comparison.base_cost.per_million,
        comparison.head_cost.per_million,
    );
    for (sign, addresses) in [
        ('+', &comparison.added),
        ('~', &comparison.changed),
        ('-', &comparison.removed),
    ] {
        for address in addresses {
            human += &format!("\n  {sign} {address}");
        }
    }
    for w in &comparison.widened {
        human += &format!(
            "\n  ! {} statement {} ({:?}): actions {:?}, resources {:?}, principals {:?} ({} grants)",
            w.policy, w.statement, w.effect, w.actions, w.resources, w.principals, w.grants
        );
    }
    progress::finish(env.json, &serde_json::to_value(&comparison)?, human);
    Ok(())
}
