//! The GitHub-side set-up the release path's safety rests on, read with `gh api` and compared
//! with what docs/delivery.md ("Required settings in GitHub") requires: the workflow files alone
//! can't keep a branch's or a tag's workflow away from the deploy role, or an untested commit
//! off `main`. `cargo xtask doctor --env dev|prod` reports what is missing.
//!
//! Each rule is a pure function over the API's JSON (tested with the documented shapes); only
//! [`audit`] talks to GitHub.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One requirement and whether the repository meets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub what: String,
    /// What was found when it holds; `None` when it doesn't.
    pub found: Option<String>,
    /// What goes wrong without it.
    pub why: &'static str,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    fn new(what: impl Into<String>, why: &'static str, fix: impl Into<String>) -> Finding {
        Finding {
            what: what.into(),
            found: None,
            why,
            fix: fix.into(),
        }
    }

    fn holds(mut self, found: impl Into<String>) -> Finding {
        self.found = Some(found.into());
        self
    }
}

const SETTINGS: &str = "docs/delivery.md, Required settings in GitHub";

/// `gh api PATH` as JSON; `None` when GitHub answers 404 (not there, or not visible).
fn gh_api(path: &str) -> Result<Option<Value>> {
    let out = Command::new("gh")
        .args(["api", "-H", "Accept: application/vnd.github+json", path])
        .output()
        .context("running gh (is the GitHub CLI installed?)")?;
    if out.status.success() {
        return Ok(Some(
            serde_json::from_slice(&out.stdout)
                .with_context(|| format!("gh api {path}: not JSON"))?,
        ));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("HTTP 404") {
        return Ok(None);
    }
    bail!(
        "gh api {path} failed ({}): {} (is gh logged in, as a repository admin: `gh auth status`?)",
        out.status,
        err.trim()
    )
}

/// The names of `ci.yml`'s jobs: the status checks `main`'s ruleset must require (a test in
/// `workflows.rs` fails when they differ from the file).
pub const CI_CHECKS: &[&str] = &[
    "fmt",
    "clippy",
    "test (cargo xtask test)",
    "synth + terraform validate (every environment)",
    "checkov (prod synth)",
];

/// The GitHub environment `name` admits the branch `main` and nothing else (no tag pattern,
/// not "protected branches"), and, where `reviewers`, waits for a reviewer who isn't the one
/// releasing. `environment` is `GET /repos/R/environments/NAME`, `policies` its
/// `deployment-branch-policies`.
pub fn environment_rules(
    name: &str,
    environment: Option<&Value>,
    policies: Option<&Value>,
    reviewers: bool,
) -> Vec<Finding> {
    let fix = format!("set up the environment `{name}` as {SETTINGS} shows");
    let mut findings = Vec::new();
    let exists = Finding::new(
        format!("environment `{name}` exists"),
        "the workflow's jobs declare it; without it GitHub creates one with no rules",
        &fix,
    );
    let Some(environment) = environment else {
        findings.push(exists);
        return findings;
    };
    findings.push(exists.holds("yes"));
    let branches = Finding::new(
        format!("environment `{name}` admits only the branch main"),
        "a job of a workflow file from any other branch or a tag would get the role's token",
        &fix,
    );
    let policy = &environment["deployment_branch_policy"];
    let listed: Vec<String> = policies
        .and_then(|p| p["branch_policies"].as_array())
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}",
                p["type"].as_str().unwrap_or("branch"),
                p["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    findings.push(
        if policy["custom_branch_policies"].as_bool() == Some(true)
            && policy["protected_branches"].as_bool() != Some(true)
            && listed == ["branch main"]
        {
            branches.holds("branch main")
        } else if policy.is_null() {
            Finding {
                fix: format!("{fix} (it has no deployment branch policy: every ref deploys)"),
                ..branches
            }
        } else {
            Finding {
                fix: format!("{fix} (it lists: {})", listed.join(", ")),
                ..branches
            }
        },
    );
    if reviewers {
        let rule = environment["protection_rules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["type"] == "required_reviewers");
        let count = rule
            .and_then(|r| r["reviewers"].as_array())
            .map_or(0, Vec::len);
        let no_self = rule.is_some_and(|r| r["prevent_self_review"] == true);
        let review = Finding::new(
            format!("environment `{name}` waits for a reviewer other than the releaser"),
            "one person with write access could release alone",
            format!("{fix} (required reviewers and Prevent self-review)"),
        );
        findings.push(if count > 0 && no_self {
            review.holds(format!("{count} reviewer(s), self-review prevented"))
        } else {
            review
        });
    }
    findings
}

/// The pull request stages' GitHub environment `name` (`stage.yml`) exists and holds the
/// variables the workflow assumes the stages role with. It admits every branch on purpose (a
/// pull request's run is checked against its head branch): the stages role is the limit.
/// `environment` is `GET /repos/R/environments/NAME`, `variables` its `variables`.
pub fn stages_environment_rules(
    name: &str,
    environment: Option<&Value>,
    variables: Option<&Value>,
) -> Vec<Finding> {
    let fix = format!(
        "set up the environment `{name}` as docs/delivery.md, Pull request stages, shows \
         (`cargo xtask bootstrap` prints the variables)"
    );
    let exists = Finding::new(
        format!("environment `{name}` exists"),
        "the stage workflow's deploy job runs in it; without it GitHub creates one with no variables",
        &fix,
    );
    let Some(_) = environment else {
        return vec![exists];
    };
    let mut findings = vec![exists.holds("yes")];
    let set: Vec<&str> = variables
        .and_then(|v| v["variables"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for variable in ["AWS_STAGES_ROLE_ARN", "AWS_REGION"] {
        let finding = Finding::new(
            format!("environment `{name}` sets {variable}"),
            "the stage workflow's deploy job fails before it deploys a pull request's stage",
            &fix,
        );
        findings.push(if set.contains(&variable) {
            finding.holds("set")
        } else {
            finding
        });
    }
    findings
}

fn active(ruleset: &Value) -> bool {
    ruleset["enforcement"] == "active"
}

fn includes(ruleset: &Value, reference: &str) -> bool {
    ruleset["conditions"]["ref_name"]["include"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r.as_str() == Some(reference))
}

fn rule<'a>(ruleset: &'a Value, kind: &str) -> Option<&'a Value> {
    ruleset["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == kind)
}

/// `main`'s ruleset (pull requests with an approval, every CI check required: the CI gate for
/// what reaches `main`) and the `v*` tag ruleset (release tags never move or go away), from
/// the repository's rulesets as `GET /repos/R/rulesets/ID` returns each.
pub fn ruleset_rules(rulesets: &[Value], ci_checks: &[&str]) -> Vec<Finding> {
    let branch = rulesets.iter().find(|r| {
        active(r)
            && r["target"] == "branch"
            && (includes(r, "~DEFAULT_BRANCH") || includes(r, "refs/heads/main"))
    });
    let fix = format!("create it as {SETTINGS} shows");
    let mut findings = Vec::new();
    let reviewed = Finding::new(
        "main's ruleset requires a reviewed pull request",
        "anyone with write access could push a workflow to main that deploys anything",
        &fix,
    );
    findings.push(
        match branch.and_then(|b| rule(b, "pull_request")).map(|r| {
            r["parameters"]["required_approving_review_count"]
                .as_u64()
                .unwrap_or(0)
        }) {
            Some(n) if n > 0 => reviewed.holds(format!("{n} approval(s)")),
            _ => reviewed,
        },
    );
    let required: Vec<String> = branch
        .and_then(|b| rule(b, "required_status_checks"))
        .and_then(|r| r["parameters"]["required_status_checks"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["context"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&&str> = ci_checks
        .iter()
        .filter(|c| !required.iter().any(|r| r == **c))
        .collect();
    let gate = Finding::new(
        "main's ruleset requires every CI check",
        "a commit that fails CI could land on main (the deploy itself also waits for CI)",
        format!(
            "{fix}; missing: {}",
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    findings.push(if missing.is_empty() {
        gate.holds(required.join(", "))
    } else {
        gate
    });
    let tags = rulesets.iter().find(|r| {
        active(r) && r["target"] == "tag" && (includes(r, "refs/tags/v*") || includes(r, "v*"))
    });
    let kept = Finding::new(
        "release tags v* can't be moved or deleted",
        "a release's tag could be moved to another commit after the fact",
        &fix,
    );
    findings.push(
        if tags.is_some_and(|t| rule(t, "deletion").is_some() && rule(t, "update").is_some()) {
            kept.holds("update and deletion blocked")
        } else {
            kept
        },
    );
    findings
}

/// The repository's OIDC subject template (`GET /repos/R/actions/oidc/customization/sub`):
/// the trust policy names the default subject, so a customised template locks the role out.
pub fn subject_rule(template: Option<&Value>) -> Finding {
    let finding = Finding::new(
        "the OIDC subject claim uses GitHub's default template",
        "the deploy role trusts `repo:...:environment:NAME`; a custom template changes `sub` \
         and AssumeRoleWithWebIdentity is refused",
        "gh api -X PUT repos/OWNER/REPO/actions/oidc/customization/sub -F use_default=true, or \
         make the trust policy name what the template produces",
    );
    match template {
        Some(t) if t["use_default"] == false => Finding {
            fix: format!("{} (it includes: {})", finding.fix, t["include_claim_keys"]),
            ..finding
        },
        _ => finding.holds("default"),
    }
}

/// Reads the repository's set-up with `gh` and checks every rule for the environment
/// `env_name`, whose jobs run in the GitHub environments `github_environment` (deploy),
/// `check_environment` (the release check) and, when it has stages, `stages_environment`.
pub fn audit(
    repository: &str,
    github_environment: &str,
    check_environment: &str,
    stages_environment: Option<&str>,
    reviewers: bool,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for (name, reviewers) in [(github_environment, reviewers), (check_environment, false)] {
        let base = format!("repos/{repository}/environments/{name}");
        let environment = gh_api(&base)?;
        let policies = match environment {
            Some(_) => gh_api(&format!("{base}/deployment-branch-policies"))?,
            None => None,
        };
        findings.extend(environment_rules(
            name,
            environment.as_ref(),
            policies.as_ref(),
            reviewers,
        ));
    }
    if let Some(name) = stages_environment {
        let base = format!("repos/{repository}/environments/{name}");
        let environment = gh_api(&base)?;
        let variables = match environment {
            Some(_) => gh_api(&format!("{base}/variables?per_page=30"))?,
            None => None,
        };
        findings.extend(stages_environment_rules(
            name,
            environment.as_ref(),
            variables.as_ref(),
        ));
    }
    let mut rulesets = Vec::new();
    for summary in gh_api(&format!("repos/{repository}/rulesets"))?
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
    {
        if let Some(id) = summary["id"].as_u64()
            && let Some(detail) = gh_api(&format!("repos/{repository}/rulesets/{id}"))?
        {
            rulesets.push(detail);
        }
    }
    findings.extend(ruleset_rules(&rulesets, CI_CHECKS));
    findings.push(subject_rule(
        gh_api(&format!(
            "repos/{repository}/actions/oidc/customization/sub"
        ))?
        .as_ref(),
    ));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held(findings: &[Finding]) -> Vec<(&str, bool)> {
        findings
            .iter()
            .map(|f| (f.what.as_str(), f.found.is_some()))
            .collect()
    }

    #[test]
    fn the_stages_environment_must_exist_with_its_variables() {
        let missing = stages_environment_rules("dev-stages", None, None);
        assert_eq!(held(&missing), [("environment `dev-stages` exists", false)]);
        let environment = json!({ "name": "dev-stages" });
        let variables = json!({ "variables": [{ "name": "AWS_REGION", "value": "us-east-1" }] });
        assert_eq!(
            held(&stages_environment_rules(
                "dev-stages",
                Some(&environment),
                Some(&variables)
            )),
            [
                ("environment `dev-stages` exists", true),
                ("environment `dev-stages` sets AWS_STAGES_ROLE_ARN", false),
                ("environment `dev-stages` sets AWS_REGION", true),
            ]
        );
    }

    #[test]
    fn prod_must_admit_main_alone_and_wait_for_another_reviewer() {
        let good = json!({
            "deployment_branch_policy": { "protected_branches": false, "custom_branch_policies": true },
            "protection_rules": [{ "type": "required_reviewers", "prevent_self_review": true,
                                   "reviewers": [{ "type": "User", "reviewer": { "login": "a" } }] }],
        });
        let main_only = json!({ "branch_policies": [{ "name": "main", "type": "branch" }] });
        let findings = environment_rules("prod", Some(&good), Some(&main_only), true);
        assert!(findings.iter().all(|f| f.found.is_some()), "{findings:?}");

        // The old set-up: a tag pattern beside main.
        let with_tags = json!({ "branch_policies": [
            { "name": "main", "type": "branch" }, { "name": "v*", "type": "tag" } ] });
        let findings = environment_rules("prod", Some(&good), Some(&with_tags), true);
        let branches = &findings[1];
        assert!(branches.found.is_none());
        assert!(branches.fix.contains("tag v*"), "{}", branches.fix);

        // No policy at all, no reviewers, or no environment.
        let open = json!({ "deployment_branch_policy": null, "protection_rules": [] });
        assert_eq!(
            held(&environment_rules("prod", Some(&open), None, true)),
            [
                ("environment `prod` exists", true),
                ("environment `prod` admits only the branch main", false),
                (
                    "environment `prod` waits for a reviewer other than the releaser",
                    false
                ),
            ]
        );
        assert_eq!(
            held(&environment_rules("prod-release-check", None, None, false)),
            [("environment `prod-release-check` exists", false)]
        );
    }

    #[test]
    fn mains_ruleset_requires_reviews_and_every_ci_check_and_tags_stay_put() {
        let checks = ["fmt", "clippy"];
        let main = json!({ "target": "branch", "enforcement": "active",
            "conditions": { "ref_name": { "include": ["~DEFAULT_BRANCH"], "exclude": [] } },
            "rules": [
                { "type": "pull_request", "parameters": { "required_approving_review_count": 1 } },
                { "type": "required_status_checks", "parameters": {
                    "required_status_checks": [{ "context": "fmt" }, { "context": "clippy" }] } } ] });
        let tags = json!({ "target": "tag", "enforcement": "active",
            "conditions": { "ref_name": { "include": ["refs/tags/v*"], "exclude": [] } },
            "rules": [{ "type": "deletion" }, { "type": "update" }] });
        let all = ruleset_rules(&[main.clone(), tags.clone()], &checks);
        assert!(all.iter().all(|f| f.found.is_some()), "{all:?}");

        // A missing check is named; an inactive ruleset counts for nothing.
        let more = ["fmt", "test (cargo xtask test)"];
        let gate = &ruleset_rules(std::slice::from_ref(&main), &more)[1];
        assert!(gate.found.is_none() && gate.fix.contains("`test (cargo xtask test)`"));
        let mut evaluate = main;
        evaluate["enforcement"] = json!("evaluate");
        assert_eq!(
            held(&ruleset_rules(&[evaluate, tags], &checks)),
            [
                ("main's ruleset requires a reviewed pull request", false),
                ("main's ruleset requires every CI check", false),
                ("release tags v* can't be moved or deleted", true),
            ]
        );
    }

    #[test]
    fn a_custom_subject_template_is_reported_with_its_claims() {
        assert!(
            subject_rule(Some(&json!({ "use_default": true })))
                .found
                .is_some()
        );
        assert!(subject_rule(None).found.is_some());
        let custom = subject_rule(Some(
            &json!({ "use_default": false, "include_claim_keys": ["repo", "job_workflow_ref"] }),
        ));
        assert!(custom.found.is_none() && custom.fix.contains("job_workflow_ref"));
    }
}
