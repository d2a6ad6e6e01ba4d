//! Helpers shared by the infra integration tests: scratch folders under `build/`, the
//! Terraform CLI configuration for an offline provider mirror, and running terraform.

#![allow(dead_code)]

use infra::stack::StackOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh scratch folder `build/infra-tests/<name>` (generated files live under build/).
pub fn scratch(name: &str) -> PathBuf {
    let dir = deploy_files::workspace_root()
        .join("build")
        .join("infra-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Options as the default synth uses them, fixed so output does not depend on the machine.
pub fn fixed_options(env: &str) -> StackOptions {
    StackOptions {
        local_state_dir: format!("../../../../build/{env}"),
        local_endpoint: "http://127.0.0.1:5000".into(),
    }
}

/// Writes a Terraform CLI configuration into `dir`: a filesystem mirror for hashicorp/aws when
/// `TF_PROVIDER_MIRROR` names one (offline machines and CI), otherwise an empty file so the
/// registry is used. Always written, because the ambient `TF_CLI_CONFIG_FILE` may point at a
/// file that does not exist.
pub fn cli_config(dir: &Path) -> PathBuf {
    let file = dir.join("terraformrc");
    let text = match std::env::var("TF_PROVIDER_MIRROR") {
        Ok(mirror) if !mirror.is_empty() => format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {mirror:?}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n"
        ),
        _ => String::new(),
    };
    std::fs::write(&file, text).unwrap();
    file
}

/// Runs terraform in `dir` with the given CLI config; returns the output whatever the status.
pub fn terraform(dir: &Path, cli_config: &Path, args: &[&str]) -> Output {
    let mut command = Command::new("terraform");
    if std::env::var_os("GOGC").is_none() {
        command.env("GOGC", infra::TERRAFORM_GOGC);
    }
    command
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_WORKSPACE")
        .output()
        .expect("terraform is installed and on PATH")
}

/// Like [`terraform`], panicking with terraform's output unless it succeeds.
pub fn terraform_ok(dir: &Path, cli_config: &Path, args: &[&str]) -> String {
    let out = terraform(dir, cli_config, args);
    assert!(
        out.status.success(),
        "terraform {} in {} failed:\n{}\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
