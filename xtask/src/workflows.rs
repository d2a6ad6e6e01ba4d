//! Rules over the GitHub workflows, as ordinary tests over the parsed YAML (after
//! rust-analyzer's `tidy.rs`): what the deploy workflow promises about credentials, rollback,
//! re-runs and concurrency can't rot silently. actionlint and zizmor (`cargo xtask test`)
//! check the syntax and the generic pitfalls; these check this project's own invariants.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn workflow_path(name: &str) -> PathBuf {
    crate::base::env::workspace_root()
        .join(".github")
        .join("workflows")
        .join(name)
}

fn load(name: &str) -> (String, Yaml) {
    let path = workflow_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut docs =
        YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}"));
    (text, docs.remove(0))
}

fn jobs(workflow: &Yaml) -> Vec<(String, &Yaml)> {
    workflow["jobs"]
        .as_hash()
        .expect("a workflow has jobs")
        .iter()
        .map(|(name, job)| (name.as_str().unwrap_or("?").to_owned(), job))
        .collect()
}

fn steps(job: &Yaml) -> &[Yaml] {
    job["steps"].as_vec().map_or(&[], Vec::as_slice)
}

fn step_name(step: &Yaml) -> String {
    step["name"]
        .as_str()
        .or(step["uses"].as_str())
        .or(step["id"].as_str())
        .unwrap_or("(unnamed)")
        .to_owned()
}

/// The first line of a `run:` script that starts a compiler: `cargo` in any form
/// (`cargo build`, `cargo run`, `cargo xtask`, `cargo install`), a `cargo-*` plugin or
/// `rustc`. Comments are ignored; anything else that names cargo as a command counts.
fn compiles(script: &str) -> Option<String> {
    script
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line))
        .filter(|line| !line.trim_start().starts_with('#'))
        .find(|line| {
            line.split(|c: char| c.is_whitespace() || ";|&()`\"'".contains(c))
                .map(|word| word.rsplit('/').next().unwrap_or(word))
                .any(|word| word == "cargo" || word == "rustc" || word.starts_with("cargo-"))
        })
        .map(|line| line.trim().to_owned())
}

/// Steps of `job` that compile after its AWS credentials step, as "step: line".
fn compiles_with_credentials(job: &Yaml) -> Vec<String> {
    let steps = steps(job);
    let Some(credentials) = steps.iter().position(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
    }) else {
        return Vec::new();
    };
    steps[credentials + 1..]
        .iter()
        .filter_map(|step| {
            let line = compiles(step["run"].as_str()?)?;
            Some(format!("{}: {line}", step_name(step)))
        })
        .collect()
}

fn has_id_token(job: &Yaml) -> bool {
    job["permissions"]["id-token"].as_str() == Some("write")
}

#[test]
fn nothing_compiles_while_aws_credentials_exist() {
    for file in ["deploy.yml", "ci.yml"] {
        let (_, workflow) = load(file);
        for (name, job) in jobs(&workflow) {
            let offending = compiles_with_credentials(job);
            assert!(
                offending.is_empty(),
                "{file}: job `{name}` compiles after assuming the AWS role (a build script \
                 would run with the credentials); build in a job without them and hand the \
                 binaries over as an artifact:\n  {}",
                offending.join("\n  ")
            );
            // The OIDC token request itself is a credential: a job that may mint one
            // compiles nothing at all, before or after the credentials step.
            if has_id_token(job) {
                let compiling: Vec<String> = steps(job)
                    .iter()
                    .filter_map(|s| {
                        Some(format!(
                            "{}: {}",
                            step_name(s),
                            compiles(s["run"].as_str()?)?
                        ))
                    })
                    .collect();
                assert!(
                    compiling.is_empty(),
                    "{file}: job `{name}` has `id-token: write` and compiles:\n  {}",
                    compiling.join("\n  ")
                );
            }
        }
    }
}

#[test]
fn the_rule_catches_a_compile_after_the_credentials_step() {
    let bad = YamlLoader::load_from_str(
        "jobs:\n  deploy:\n    steps:\n      - run: cargo build --locked # ok, before\n      \
         - uses: aws-actions/configure-aws-credentials@0000000000000000000000000000000000000000\n      \
         - name: deploy\n        run: |\n          # cargo in a comment is fine\n          \
         set -e\n          ~/.cargo/bin/cargo xtask deploy --env dev\n",
    )
    .unwrap()
    .remove(0);
    let job = &bad["jobs"]["deploy"];
    assert_eq!(
        compiles_with_credentials(job),
        vec!["deploy: ~/.cargo/bin/cargo xtask deploy --env dev".to_owned()]
    );
    assert_eq!(compiles("\"$XTASK\" deploy --env dev  # not cargo"), None);
    assert!(compiles("echo x && cargo-zigbuild build").is_some());
    assert_eq!(compiles("build/tools/xtask rollback --env dev"), None);
}

#[test]
fn the_deploy_job_runs_prebuilt_binaries_and_the_build_job_has_no_credentials() {
    let (_, workflow) = load("deploy.yml");
    let deploy = &workflow["jobs"]["deploy"];
    let build = &workflow["jobs"]["build"];
    assert!(
        has_id_token(deploy),
        "the deploy job assumes the role by OIDC"
    );
    assert!(
        !has_id_token(build),
        "the build job must not be able to mint a token"
    );
    assert!(
        steps(build).iter().all(|s| s["uses"]
            .as_str()
            .is_none_or(|u| !u.starts_with("aws-actions/"))),
        "the build job must not configure AWS credentials"
    );
    let needs: Vec<&str> = deploy["needs"]
        .as_vec()
        .expect("deploy needs a list")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        needs.contains(&"build") && needs.contains(&"resolve"),
        "{needs:?}"
    );
}

#[test]
fn an_unfinished_release_is_rolled_back_whatever_ended_the_deploy() {
    let (_, workflow) = load("deploy.yml");
    let deploy = &workflow["jobs"]["deploy"];
    let recovery = steps(deploy)
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("rollback") && r.contains("--unfinished"))
        })
        .expect("a step runs `xtask rollback --unfinished`");
    let condition = recovery["if"].as_str().unwrap_or_default();
    // failure() is false for a cancelled or timed-out job; always() is not.
    assert!(
        condition.contains("always()") && !condition.contains("failure()"),
        "the recovery step must run on failure, cancellation and timeout: `{condition}`"
    );
    assert!(
        !condition.contains("hashFiles"),
        "the record lives on the aliases, not in the runner's build folder: `{condition}`"
    );
    // A manual rollback run is offered.
    let inputs = &workflow["on"]["workflow_dispatch"]["inputs"];
    let options: Vec<&str> = inputs["action"]["options"]
        .as_vec()
        .expect("workflow_dispatch has an `action` input")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(options.contains(&"rollback"), "{options:?}");
}

#[test]
fn concurrency_is_decided_after_validation_and_never_cancels_a_release() {
    let (_, workflow) = load("deploy.yml");
    assert!(
        workflow["concurrency"].is_badvalue(),
        "no workflow-level concurrency: it is decided before `resolve` rejects a run"
    );
    let deploy = &workflow["jobs"]["deploy"];
    let group = deploy["concurrency"]["group"].as_str().unwrap_or_default();
    assert!(group.contains("needs.resolve.outputs.env"), "{group}");
    assert_eq!(
        deploy["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false)
    );
}

#[test]
fn artifacts_can_be_uploaded_again_by_a_rerun() {
    for file in ["deploy.yml", "ci.yml"] {
        let (_, workflow) = load(file);
        for (name, job) in jobs(&workflow) {
            for step in steps(job) {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
                {
                    assert_eq!(
                        step["with"]["overwrite"].as_bool(),
                        Some(true),
                        "{file}: job `{name}`, step `{}`: a re-run fails on an existing name",
                        step_name(step)
                    );
                }
            }
        }
    }
}

#[test]
fn actions_are_pinned_to_a_full_sha_with_the_tag_beside_it() {
    for file in ["deploy.yml", "ci.yml"] {
        let (text, _) = load(file);
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let (_, spec) = line.split_once("uses:").unwrap();
            let (action, comment) = spec.split_once('#').unwrap_or((spec, ""));
            let (_, sha) = action.trim().split_once('@').unwrap_or(("", ""));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{file}: `{}` is not pinned to a full commit SHA",
                line.trim()
            );
            assert!(
                comment.trim().starts_with('v'),
                "{file}: `{}` has no `# vX.Y.Z` tag comment",
                line.trim()
            );
        }
    }
}
