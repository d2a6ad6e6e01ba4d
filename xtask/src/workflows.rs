//! Rules over the GitHub workflows, as ordinary tests over the parsed YAML (after
//! rust-analyzer's `tidy.rs`): what the deploy workflow promises about credentials, rollback,
//! re-runs and concurrency, and the pull request stage workflow about forks and what its
//! credentials reach, can't rot silently. actionlint and zizmor (`cargo xtask test`)
//! check the syntax and the generic pitfalls; these check this project's own invariants.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn workflow_path(name: &str) -> PathBuf {
    deploy_files::workspace_root()
        .join(".github")
        .join("workflows")
        .join(name)
}

/// Every workflow file, by name.
fn workflow_files() -> Vec<String> {
    let dir = workflow_path("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.contains(&"deploy.yml".to_owned()), "{names:?}");
    names
}

/// The workflows that can hold AWS credentials: a job with `id-token: write`.
fn credentialed_workflows() -> Vec<(String, String, Yaml)> {
    workflow_files()
        .into_iter()
        .map(|name| {
            let (text, workflow) = load(&name);
            (name, text, workflow)
        })
        .filter(|(_, _, workflow)| jobs(workflow).iter().any(|(_, job)| has_id_token(job)))
        .collect()
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

/// The first line of a `run:` script with a command word for which `is_command` holds
/// (the word's last path segment: `~/.cargo/bin/cargo` is `cargo`). Comments are ignored.
fn runs(script: &str, is_command: impl Fn(&str) -> bool) -> Option<String> {
    script
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line))
        .filter(|line| !line.trim_start().starts_with('#'))
        .find(|line| {
            line.split(|c: char| c.is_whitespace() || ";|&()`\"'".contains(c))
                .map(|word| word.rsplit('/').next().unwrap_or(word))
                .any(&is_command)
        })
        .map(|line| line.trim().to_owned())
}

/// The first line of a `run:` script that starts a compiler: `cargo` in any form
/// (`cargo build`, `cargo run`, `cargo xtask`, `cargo install`), a `cargo-*` plugin or
/// `rustc`. Comments are ignored; anything else that names cargo as a command counts.
fn compiles(script: &str) -> Option<String> {
    runs(script, |word| {
        word == "cargo" || word == "rustc" || word.starts_with("cargo-")
    })
}

/// The index of the step that assumes the AWS role, if the job has one.
fn credentials_step(job: &Yaml) -> Option<usize> {
    steps(job).iter().position(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
    })
}

/// The `run:` scripts of the steps after the credentials step, with the step's name.
fn scripts_with_credentials(job: &Yaml) -> Vec<(String, &str)> {
    let Some(credentials) = credentials_step(job) else {
        return Vec::new();
    };
    steps(job)[credentials + 1..]
        .iter()
        .filter_map(|step| Some((step_name(step), step["run"].as_str()?)))
        .collect()
}

/// Steps of `job` that compile after its AWS credentials step, as "step: line".
fn compiles_with_credentials(job: &Yaml) -> Vec<String> {
    scripts_with_credentials(job)
        .into_iter()
        .filter_map(|(name, script)| Some(format!("{name}: {}", compiles(script)?)))
        .collect()
}

fn has_id_token(job: &Yaml) -> bool {
    job["permissions"]["id-token"].as_str() == Some("write")
}

#[test]
fn nothing_compiles_while_aws_credentials_exist() {
    for file in workflow_files() {
        let (_, workflow) = load(&file);
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
    let all = steps(deploy);
    let deploying = all
        .iter()
        .position(|s| s["run"].as_str().is_some_and(|r| r.contains(" deploy ")))
        .expect("a step runs `xtask deploy`");
    let recovery = all[deploying..]
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("rollback") && r.contains("--unfinished"))
        })
        .expect("a step after the deploy runs `xtask rollback --unfinished`");
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
    for file in workflow_files() {
        let (_, workflow) = load(&file);
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
    for file in workflow_files() {
        let (text, _) = load(&file);
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

/// The `run:` script of the step with this `id`.
fn script_of<'a>(job: &'a Yaml, id: &str) -> &'a str {
    steps(job)
        .iter()
        .find(|s| s["id"].as_str() == Some(id))
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("no step with id `{id}` and a script"))
}

fn strings(value: &Yaml) -> Vec<&str> {
    match value {
        Yaml::Array(items) => items.iter().filter_map(Yaml::as_str).collect(),
        Yaml::String(s) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// Issue #28, point 1: a tag, a branch or a workflow file from anywhere but main must not
/// reach an environment. The deploy starts after CI (`workflow_run`, which runs main's file)
/// or by hand, never on a push (a tag push runs the tagged commit's workflow file), and
/// `resolve` refuses every ref but main.
#[test]
fn only_mains_workflow_file_deploys_and_no_tag_or_push_starts_it() {
    let (_, workflow) = load("deploy.yml");
    let on = &workflow["on"];
    let triggers: Vec<&str> = on
        .as_hash()
        .expect("`on` is a map")
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(
        triggers,
        ["workflow_run", "workflow_dispatch"],
        "a push or tag trigger runs the workflow file of the pushed commit"
    );
    let pick = script_of(&workflow["jobs"]["resolve"], "pick");
    assert!(
        pick.contains(r#""$REF" != refs/heads/main"#),
        "resolve refuses every ref but main:\n{pick}"
    );
    // The release's tag comes after success, from the `tag` job alone; no other job may
    // write the repository.
    for (name, job) in jobs(&workflow) {
        let writes = job["permissions"]["contents"].as_str() == Some("write");
        assert_eq!(writes, name == "tag", "job `{name}`: contents: write");
    }
    let tag = &workflow["jobs"]["tag"];
    assert!(
        strings(&tag["needs"]).contains(&"deploy"),
        "tag after the deploy"
    );
    assert!(
        !tag["if"].as_str().unwrap_or_default().contains("always()"),
        "the tag job runs only when the deploy succeeded"
    );
    // No workflow of the repository starts on a tag.
    for file in workflow_files() {
        let (_, workflow) = load(&file);
        assert!(
            workflow["on"]["push"]["tags"].is_badvalue(),
            "{file}: a tag push runs the tagged commit's workflow file"
        );
    }
}

/// Issue #28, point 2: only a commit whose CI succeeded on main deploys, and exactly that
/// commit (with `workflow_run`, `github.sha` is main's newest commit, not the tested one).
#[test]
fn only_a_commit_that_passed_ci_on_main_deploys() {
    let (_, ci) = load("ci.yml");
    let (_, workflow) = load("deploy.yml");
    let run = &workflow["on"]["workflow_run"];
    assert_eq!(
        strings(&run["workflows"]),
        [ci["name"].as_str().expect("ci.yml has a name")],
        "deploy follows CI by CI's name"
    );
    assert_eq!(strings(&run["types"]), ["completed"]);
    assert_eq!(strings(&run["branches"]), ["main"]);
    let resolve = &workflow["jobs"]["resolve"];
    assert!(
        resolve["if"]
            .as_str()
            .unwrap_or_default()
            .contains("github.event.workflow_run.conclusion == 'success'"),
        "a red CI run deploys nothing"
    );
    let pick = script_of(resolve, "pick");
    for (what, needle) in [
        ("a successful run", r#""$RUN_CONCLUSION" != success"#),
        (
            "of a push, not a pull request (a fork's `main` matches `branches`)",
            r#""$RUN_EVENT" != push"#,
        ),
        (
            "of this repository",
            r#""$RUN_REPOSITORY" != "$GITHUB_REPOSITORY""#,
        ),
        ("the commit CI tested", r#"sha="$RUN_SHA""#),
        (
            "a manual deploy's commit has a successful CI push run on main",
            "actions/workflows/ci.yml/runs?head_sha=$sha&event=push&branch=main&status=success",
        ),
    ] {
        assert!(pick.contains(needle), "resolve checks {what} (`{needle}`)");
    }
    assert_eq!(
        resolve["permissions"]["actions"].as_str(),
        Some("read"),
        "resolve reads CI's runs"
    );
    for job in ["build", "deploy"] {
        let checkout = steps(&workflow["jobs"][job])
            .iter()
            .find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
            })
            .unwrap_or_else(|| panic!("{job} checks out"));
        assert_eq!(
            checkout["with"]["ref"].as_str(),
            Some("${{ needs.resolve.outputs.sha }}"),
            "{job} builds and deploys the commit resolve checked"
        );
    }
}

/// Issue #28, points 3 and 4: every deploy job first undoes a release an earlier run left
/// unfinished (a lost runner or a forced cancel skips `always()` steps), and checks out the
/// history xtask needs to refuse a commit older than the one serving.
#[test]
fn every_deploy_job_starts_by_rolling_back_an_unfinished_release() {
    let (_, workflow) = load("deploy.yml");
    let deploy = &workflow["jobs"]["deploy"];
    let all = steps(deploy);
    let credentials = credentials_step(deploy).expect("the deploy job assumes the role");
    let first = &all[credentials + 1];
    let script = first["run"].as_str().unwrap_or_default();
    assert!(
        script.contains("rollback")
            && script.contains("--unfinished")
            && !script.contains("--older-than"),
        "the first step with credentials rolls back any unfinished release: {}",
        step_name(first)
    );
    assert!(
        all[credentials + 2]["run"]
            .as_str()
            .is_some_and(|r| r.contains(" deploy ")),
        "then deploys"
    );
    let checkout = &all[0];
    assert_eq!(
        checkout["with"]["fetch-depth"].as_i64(),
        Some(0),
        "xtask deploy compares the commit with the one serving (git merge-base)"
    );
}

/// Issue #28, point 4: a release left half-done when no deploy follows is found within the
/// hour. The scheduled check may run beside a deploy, so it spares a young release, and it
/// stays out of the deploy concurrency group, where it would replace a waiting deploy.
#[test]
fn a_scheduled_check_rolls_back_and_reports_what_deploys_left_half_done() {
    let (_, workflow) = load("release-check.yml");
    assert!(
        workflow["on"]["schedule"]
            .as_vec()
            .is_some_and(|s| !s.is_empty()),
        "release-check.yml runs on a schedule"
    );
    let check = &workflow["jobs"]["check"];
    assert_eq!(
        strings(&check["strategy"]["matrix"]["env"]),
        ["dev", "prod"]
    );
    let group = check["concurrency"]["group"].as_str().unwrap_or_default();
    assert!(!group.starts_with("deploy-"), "{group}");
    assert!(
        check["environment"]["name"]
            .as_str()
            .is_some_and(|e| e.ends_with("-release-check")),
        "its own environment: prod's reviewers can't approve a schedule"
    );
    let credentials = &steps(check)[credentials_step(check).expect("it assumes a role")];
    assert_eq!(
        credentials["with"]["role-to-assume"].as_str(),
        Some("${{ vars.AWS_RELEASE_CHECK_ROLE_ARN }}"),
        "the release check's role, which can only move aliases"
    );
    let scripts: Vec<&str> = scripts_with_credentials(check)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let script = scripts
        .iter()
        .find(|s| s.contains("rollback"))
        .expect("it runs xtask rollback");
    for needle in [
        "--unfinished",
        "--older-than",
        ".unfinished",
        ".weighted",
        "exit 1",
    ] {
        assert!(script.contains(needle), "`{needle}` in:\n{script}");
    }
}

/// Issue #28, point 4: a step that hangs fails at its own limit, not at the job's, so the
/// steps after it (the recovery rollback, the summary) still run inside the role session.
#[test]
fn every_step_and_job_of_a_workflow_with_credentials_has_a_timeout() {
    for file in workflow_files() {
        let (_, workflow) = load(&file);
        for (name, job) in jobs(&workflow) {
            assert!(
                job["timeout-minutes"].as_i64().is_some(),
                "{file}: job `{name}` has no timeout-minutes"
            );
        }
    }
    for (file, _, workflow) in credentialed_workflows() {
        for (name, job) in jobs(&workflow) {
            for step in steps(job) {
                assert!(
                    step["timeout-minutes"].as_i64().is_some(),
                    "{file}: job `{name}`, step `{}` has no timeout-minutes",
                    step_name(step)
                );
            }
        }
        // After the credentials step the limits add up to less than the role session.
        for (name, job) in jobs(&workflow) {
            let Some(credentials) = credentials_step(job) else {
                continue;
            };
            let session = steps(job)[credentials]["with"]["role-duration-seconds"]
                .as_i64()
                .expect("the session length is explicit");
            let all = steps(job);
            // A manual rollback replaces the deploy step: count the longer of the two.
            let exclusive = |id: &str| {
                all.iter()
                    .find(|s| s["id"].as_str() == Some(id))
                    .and_then(|s| s["timeout-minutes"].as_i64())
            };
            let mut minutes: i64 = all[credentials + 1..]
                .iter()
                .filter(|s| !matches!(s["id"].as_str(), Some("deploy" | "rollback")))
                .filter_map(|s| s["timeout-minutes"].as_i64())
                .sum();
            minutes += exclusive("deploy").max(exclusive("rollback")).unwrap_or(0);
            assert!(
                minutes * 60 < session,
                "{file}: job `{name}`: {minutes} min of steps after a {session} s session"
            );
        }
    }
}

/// Issue #28, point 6: with credentials, Terraform runs only inside xtask, which installs the
/// exactly pinned provider against the committed lock file (`-lockfile=readonly`); a bare
/// `terraform init` would take whatever the registry serves.
#[test]
fn terraform_runs_only_through_xtask_while_credentials_exist() {
    for (file, _, workflow) in credentialed_workflows() {
        for (name, job) in jobs(&workflow) {
            for (step, script) in scripts_with_credentials(job) {
                assert_eq!(
                    runs(script, |word| word == "terraform"
                        || word.starts_with("terraform-")),
                    None,
                    "{file}: job `{name}`, step `{step}` runs terraform with the role's credentials"
                );
            }
        }
    }
    assert!(
        infra::stack::AWS_PROVIDER_VERSION
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.'),
        "the provider is pinned to one version"
    );
    assert!(
        infra::stack::PROVIDER_LOCK.contains(&format!(
            "version     = \"{}\"",
            infra::stack::AWS_PROVIDER_VERSION
        )),
        "infra/terraform.lock.hcl locks the pinned version"
    );
}

/// Issue #28, point 7: the job summary is world-readable in a public repository; request
/// bodies stay out of it (smoke masks secret-named keys too, `smoke/src/api.rs`).
#[test]
fn the_job_summary_leaves_request_bodies_out() {
    let (_, workflow) = load("deploy.yml");
    let summary = steps(&workflow["jobs"]["deploy"])
        .iter()
        .find_map(|s| {
            s["run"]
                .as_str()
                .filter(|r| r.contains("GITHUB_STEP_SUMMARY"))
        })
        .expect("a step writes the job summary");
    assert!(
        summary.contains(".request |= del(.body)"),
        "every report goes through the filter that drops request bodies"
    );
    assert!(
        !summary.contains("head -c 60000 \"$2\""),
        "a report that is not JSON is not pasted raw"
    );
}

#[test]
fn the_command_rule_sees_terraform_behind_a_path_and_not_in_comments() {
    let terraform = |s: &str| runs(s, |w| w == "terraform");
    assert!(terraform("/usr/bin/terraform -chdir=x init").is_some());
    assert!(terraform("set -e; terraform init").is_some());
    assert_eq!(terraform("# terraform init\n\"$XTASK\" deploy"), None);
    assert_eq!(terraform("echo terraform-free"), None);
}

/// Issue #28, point 8: `doctor` checks that `main`'s ruleset requires exactly CI's jobs.
#[test]
fn the_doctors_required_checks_are_ci_yml_s_jobs() {
    let (_, ci) = load("ci.yml");
    let jobs = jobs(&ci);
    let names: Vec<&str> = jobs
        .iter()
        .map(|(id, job)| job["name"].as_str().unwrap_or(id.as_str()))
        .collect();
    assert_eq!(
        crate::services::github::CI_CHECKS,
        names.as_slice(),
        "update CI_CHECKS in xtask/src/services/github.rs"
    );
}

/// The guard every credentialed job of a pull request workflow carries: the pull request's
/// head is a branch of this repository, not a fork.
const HEAD_REPO_GUARD: &str = "github.event.pull_request.head.repo.full_name == github.repository";

/// Whether a job may run a fork's code with credentials. A workflow triggered by
/// `pull_request` runs for forks too (without secrets or id-token, which GitHub withholds);
/// a credentialed job of it must check the head repository anyway, or run only on events
/// that carry no pull request (the schedule, a manual run: the default branch's code).
fn open_to_forks(triggers: &[&str], job: &Yaml) -> bool {
    if !triggers.contains(&"pull_request") {
        return false;
    }
    let condition = job["if"].as_str().unwrap_or_default();
    if condition.contains(HEAD_REPO_GUARD) {
        return false;
    }
    !condition.split("||").all(|term| {
        matches!(
            term.trim(),
            "github.event_name == 'schedule'" | "github.event_name == 'workflow_dispatch'"
        )
    })
}

fn triggers(workflow: &Yaml) -> Vec<&str> {
    match &workflow["on"] {
        Yaml::Hash(events) => events.keys().filter_map(Yaml::as_str).collect(),
        other => strings(other),
    }
}

/// Issue #26: no credentials reach a fork's code. No workflow starts on
/// `pull_request_target` (which runs with the base's secrets and may check out the fork),
/// and every job that can mint a token or write to the pull request has the head-repository
/// guard (or runs only on the schedule or by hand).
#[test]
fn no_credentials_reach_a_forks_pull_request() {
    for file in workflow_files() {
        let (_, workflow) = load(&file);
        let on = triggers(&workflow);
        assert!(
            !on.contains(&"pull_request_target"),
            "{file}: pull_request_target runs a fork's pull request with this repository's secrets"
        );
        for (name, job) in jobs(&workflow) {
            let writes_the_pull_request =
                job["permissions"]["pull-requests"].as_str() == Some("write");
            if has_id_token(job) || writes_the_pull_request || credentials_step(job).is_some() {
                assert!(
                    !open_to_forks(&on, job),
                    "{file}: job `{name}` holds credentials and can run for a fork's pull \
                     request: add `{HEAD_REPO_GUARD}` to its `if`"
                );
            }
        }
    }
    let (_, stage) = load("stage.yml");
    assert_eq!(
        triggers(&stage),
        ["pull_request", "schedule", "workflow_dispatch"]
    );
    // The rule itself, on a job without the guard and on the sweep's condition.
    let job = |condition: &str| {
        YamlLoader::load_from_str(&format!("if: \"{condition}\""))
            .unwrap()
            .remove(0)
    };
    assert!(open_to_forks(
        &["pull_request"],
        &job("github.event.action != 'closed'")
    ));
    assert!(!open_to_forks(
        &["pull_request"],
        &job("github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'")
    ));
    assert!(!open_to_forks(
        &["pull_request"],
        &job(&format!(
            "github.event.action == 'closed' && {HEAD_REPO_GUARD}"
        ))
    ));
}

/// Issue #26: a pull request's workflow file is the branch's own, not main's, so what it may
/// reach is set by the GitHub environment and its role: every credentialed job of stage.yml
/// runs in `dev-stages` with the stages role, and every xtask command it runs with the
/// credentials acts on a `pr-<number>` stage of dev (or sweeps stages), never on dev's own
/// stacks or prod. No other workflow uses that environment.
#[test]
fn pull_request_stages_reach_only_dev_stages() {
    assert!(
        credentialed_workflows()
            .iter()
            .any(|(file, _, _)| file == "stage.yml"),
        "the generic credential rules (compiling, timeouts, terraform) see stage.yml"
    );
    for file in workflow_files() {
        let (text, workflow) = load(&file);
        for (name, job) in jobs(&workflow) {
            let environment = job["environment"]["name"].as_str().unwrap_or_default();
            if file == "stage.yml" {
                if has_id_token(job) {
                    assert_eq!(environment, "dev-stages", "stage.yml: job `{name}`");
                }
            } else {
                assert_ne!(environment, "dev-stages", "{file}: job `{name}`");
            }
        }
        if file == "stage.yml" {
            assert!(!text.contains("--env prod"), "stage.yml names prod");
        }
    }
    let (_, workflow) = load("stage.yml");
    let mut commands = 0;
    for (name, job) in jobs(&workflow) {
        let Some(credentials) = credentials_step(job) else {
            continue;
        };
        assert_eq!(
            steps(job)[credentials]["with"]["role-to-assume"].as_str(),
            Some("${{ vars.AWS_STAGES_ROLE_ARN }}"),
            "job `{name}` assumes the stages role"
        );
        if let Some(stage) = job["env"]["STAGE"].as_str() {
            assert_eq!(stage, "pr-${{ github.event.pull_request.number }}");
        }
        for (step, script) in scripts_with_credentials(job) {
            for line in script.lines().filter(|l| l.contains("\"$XTASK\"")) {
                commands += 1;
                assert!(
                    line.contains("--env dev")
                        && (line.contains("--stage \"$STAGE\"") || line.contains(" stages sweep ")),
                    "job `{name}`, step `{step}`: an xtask command with the stages role acts \
                     on the pull request's stage of dev: {line}"
                );
            }
        }
    }
    assert!(
        commands >= 5,
        "deploy, outputs (2), destroy, sweep: {commands}"
    );
}

/// The comment steps find the one comment by the marker `xtask compare --markdown` opens it
/// with.
#[test]
fn the_stage_comment_is_found_by_the_marker_compare_writes() {
    let (_, workflow) = load("stage.yml");
    assert_eq!(
        workflow["env"]["COMMENT_MARKER"].as_str(),
        Some(crate::services::compare::COMMENT_MARKER)
    );
    for (name, job) in jobs(&workflow) {
        let writes = job["permissions"]["pull-requests"].as_str() == Some("write");
        let comments = steps(job).iter().any(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("update-stage-comment.sh"))
        });
        assert_eq!(
            writes, comments,
            "job `{name}`: pull-requests: write exactly where the comment is written"
        );
    }
}

/// A `${{ }}` expansion inside a script is pasted into the shell source before it runs:
/// a branch name or a pull request title would be code. Scripts read values from `env:`.
#[test]
fn no_script_expands_an_expression() {
    for file in workflow_files() {
        let (_, workflow) = load(&file);
        for (name, job) in jobs(&workflow) {
            for step in steps(job) {
                let script = step["run"].as_str().unwrap_or_default();
                assert!(
                    !script.contains("${{"),
                    "{file}: job `{name}`, step `{}`: pass the value through `env:`",
                    step_name(step)
                );
            }
        }
    }
}
