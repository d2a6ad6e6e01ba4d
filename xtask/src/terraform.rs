//! Running Terraform on a synthesized stack: offline provider installation,
//! state kept outside `cdktf.out` (synth wipes that folder), output streamed
//! under a progress display and terraform's own error shown on failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::env::Env;
use crate::process;
use crate::progress::{self, LineKind};

/// One stack of one environment, ready to run terraform commands on.
pub struct Terraform<'a> {
    env: &'a Env,
    stack: &'static str,
    /// Extra environment for the terraform process (emulator endpoint and
    /// credentials for `local`).
    vars: Vec<(String, String)>,
}

/// Fails with what to install when terraform is not on PATH.
pub fn require() -> Result<PathBuf> {
    process::find_program("terraform").context(
        "terraform was not found on PATH. Install Terraform 1.5 or newer \
         (https://developer.hashicorp.com/terraform/install); deploy, plan, destroy and \
         bootstrap need it",
    )
}

impl<'a> Terraform<'a> {
    pub fn new(env: &'a Env, stack: &'static str, aws_env: Vec<(String, String)>) -> Result<Self> {
        require()?;
        let dir = env.stack_dir(stack);
        if !dir.join("cdk.tf.json").exists() {
            bail!(
                "{} has no cdk.tf.json: run `cargo xtask synth --env {}` first",
                dir.display(),
                env.name
            );
        }
        write_cli_config(env)?;
        Ok(Terraform {
            env,
            stack,
            vars: aws_env,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("terraform");
        command
            .args(args)
            .current_dir(self.env.stack_dir(self.stack))
            // The machine may point this at a missing file; ours always exists.
            .env("TF_CLI_CONFIG_FILE", cli_config_path(self.env))
            // Provider installs and backend settings survive re-synthesis.
            .env("TF_DATA_DIR", self.data_dir())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0");
        for (key, value) in &self.vars {
            command.env(key, value);
        }
        command
    }

    fn data_dir(&self) -> PathBuf {
        self.env.dir().join("terraform").join(self.stack)
    }

    fn log(&self, action: &str) -> PathBuf {
        self.env
            .dir()
            .join("logs")
            .join(format!("terraform-{}-{action}.log", self.stack))
    }

    fn step(&self, action: &str) -> String {
        format!("terraform {action} ({})", self.stack)
    }

    /// `terraform init`. For emulated environments the local state file is
    /// pinned to `build/<env>/<stack>.tfstate` whatever the build folder is.
    ///
    /// Init costs seconds (it checksums the provider), and synth wipes the
    /// stack folder with its lock file every time. So the lock file is kept
    /// beside the data dir and init runs again only when what it depends on
    /// (the `terraform` block, the backend arguments, the CLI config) changed.
    pub fn init(&self) -> Result<Duration> {
        let mut args = vec!["init", "-input=false", "-no-color"];
        let backend;
        if self.env.emulated {
            backend = format!("-backend-config=path={}", self.state_file().display());
            args.push(&backend);
            args.push("-reconfigure");
        }
        let stamp = self.init_stamp(&args)?;
        let stamp_file = self.data_dir().join("xtask-init.stamp");
        let saved_lock = self.data_dir().join("xtask.terraform.lock.hcl");
        let lock = self.env.stack_dir(self.stack).join(".terraform.lock.hcl");
        if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str())
            && saved_lock.exists()
        {
            std::fs::copy(&saved_lock, &lock)
                .with_context(|| format!("restoring {}", lock.display()))?;
            return Ok(Duration::ZERO);
        }
        let _ = std::fs::remove_file(&stamp_file);
        let elapsed = progress::stream(
            &self.step("init"),
            self.command(&args),
            &self.log("init"),
            classify,
        )
        .map_err(|err| {
            let log = std::fs::read_to_string(self.log("init")).unwrap_or_default();
            if log.contains("Failed to query available provider packages") {
                err.context(
                    "terraform could not download the hashicorp/aws provider. On a machine \
                     without internet access, set TF_PROVIDER_MIRROR to a Terraform filesystem \
                     mirror that holds registry.terraform.io/hashicorp/aws and run again",
                )
            } else {
                err
            }
        })?;
        std::fs::copy(&lock, &saved_lock).with_context(|| format!("saving {}", lock.display()))?;
        process::write_atomic(&stamp_file, stamp.as_bytes())?;
        Ok(elapsed)
    }

    fn init_stamp(&self, args: &[&str]) -> Result<String> {
        use sha2::{Digest, Sha256};
        let stack: serde_json::Value =
            process::read_json(&self.env.stack_dir(self.stack).join("cdk.tf.json"))?;
        let mut hasher = Sha256::new();
        hasher.update(
            stack
                .get("terraform")
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        hasher.update(args.join(" "));
        hasher.update(std::fs::read(cli_config_path(self.env)).unwrap_or_default());
        Ok(crate::package::hex(&hasher.finalize()))
    }

    /// The local state file of an emulated environment.
    pub fn state_file(&self) -> PathBuf {
        self.env.dir().join(format!("{}.tfstate", self.stack))
    }

    pub fn apply(&self, var_file: Option<&Path>) -> Result<Duration> {
        self.apply_with(var_file, &[])
    }

    /// `terraform apply` without reading every resource back first: for a
    /// change xtask knows touches only the function code (see deploy).
    pub fn apply_without_refresh(&self, var_file: Option<&Path>) -> Result<Duration> {
        self.apply_with(var_file, &["-refresh=false"])
    }

    fn apply_with(&self, var_file: Option<&Path>, extra: &[&str]) -> Result<Duration> {
        let mut args = vec!["apply", "-input=false", "-no-color", "-auto-approve"];
        args.extend_from_slice(extra);
        let var_arg = var_file.map(|f| format!("-var-file={}", f.display()));
        if let Some(arg) = &var_arg {
            args.push(arg);
        }
        progress::stream(
            &self.step("apply"),
            self.command(&args),
            &self.log("apply"),
            classify,
        )
    }

    /// `terraform plan`, printed in full (the plan is what the user asked for).
    pub fn plan(&self, var_file: Option<&Path>) -> Result<()> {
        let mut args = vec!["plan", "-input=false", "-no-color"];
        let var_arg = var_file.map(|f| format!("-var-file={}", f.display()));
        if let Some(arg) = &var_arg {
            args.push(arg);
        }
        let status = self
            .command(&args)
            .stdout(std::io::stderr())
            .status()
            .with_context(|| format!("{}: could not start terraform", self.step("plan")))?;
        if !status.success() {
            bail!("{} failed ({status})", self.step("plan"));
        }
        Ok(())
    }

    pub fn destroy(&self, var_file: Option<&Path>) -> Result<Duration> {
        let mut args = vec!["destroy", "-input=false", "-no-color", "-auto-approve"];
        let var_arg = var_file.map(|f| format!("-var-file={}", f.display()));
        if let Some(arg) = &var_arg {
            args.push(arg);
        }
        progress::stream(
            &self.step("destroy"),
            self.command(&args),
            &self.log("destroy"),
            classify,
        )
    }

    /// `terraform output -json`, flattened to `{name: value}`.
    pub fn outputs(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        let output = self
            .command(&["output", "-json", "-no-color"])
            .output()
            .with_context(|| format!("{}: could not start terraform", self.step("output")))?;
        if !output.status.success() {
            bail!(
                "{} failed: {}",
                self.step("output"),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let raw: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&output.stdout)
                .with_context(|| format!("{}: unexpected output", self.step("output")))?;
        Ok(raw
            .into_iter()
            .map(|(name, entry)| {
                let value = entry
                    .get("value")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null);
                (name, value)
            })
            .collect())
    }

    /// `terraform init -migrate-state` onto the backend now in the stack JSON.
    /// Makes the next [`Terraform::init`] run for real (the backend changed
    /// in a way the stamp cannot see).
    pub fn forget_init(&self) {
        let _ = std::fs::remove_file(self.data_dir().join("xtask-init.stamp"));
    }

    pub fn migrate_state(&self) -> Result<Duration> {
        self.forget_init();
        let args = [
            "init",
            "-input=false",
            "-no-color",
            "-migrate-state",
            "-force-copy",
        ];
        progress::stream(
            &self.step("init -migrate-state"),
            self.command(&args),
            &self.log("migrate"),
            classify,
        )
    }
}

/// Which terraform lines stay on screen; the rest only update the spinner.
fn classify(line: &str) -> LineKind {
    let keep = [
        "complete after",
        "Plan:",
        "Apply complete",
        "Destroy complete",
        "No changes.",
        "Warning:",
        "Error:",
        "Terraform has been successfully initialized",
        "Changes to Outputs",
        "must be replaced",
    ];
    if keep.iter().any(|k| line.contains(k)) {
        LineKind::Keep
    } else {
        LineKind::Transient
    }
}

/// `build/terraformrc`: a CLI config of our own.
pub fn cli_config_path(env: &Env) -> PathBuf {
    env.build_root.join("terraformrc")
}

/// Writes `build/terraformrc`. With `TF_PROVIDER_MIRROR` set, the AWS
/// provider comes from that filesystem mirror (offline machines, CI);
/// otherwise from the registry, through a plugin cache under `build/`.
pub fn write_cli_config(env: &Env) -> Result<()> {
    let text = cli_config_text(
        std::env::var("TF_PROVIDER_MIRROR")
            .ok()
            .filter(|m| !m.trim().is_empty())
            .as_deref(),
        &env.build_root.join("terraform-plugin-cache"),
    );
    std::fs::create_dir_all(env.build_root.join("terraform-plugin-cache"))?;
    let path = cli_config_path(env);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        process::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}

fn cli_config_text(mirror: Option<&str>, plugin_cache: &Path) -> String {
    const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";
    match mirror {
        Some(mirror) => format!(
            "# Written by cargo xtask: the AWS provider comes from a local mirror.\n\
             provider_installation {{\n  filesystem_mirror {{\n    path    = {mirror:?}\n    \
             include = [{PROVIDER:?}]\n  }}\n  direct {{\n    exclude = [{PROVIDER:?}]\n  }}\n}}\n"
        ),
        None => {
            format!(
                "# Written by cargo xtask: providers are downloaded once into a cache.\n\
                 plugin_cache_dir = {:?}\n",
                plugin_cache.display().to_string()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_config_names_the_mirror_and_excludes_direct() {
        let text = cli_config_text(Some("/mirror"), Path::new("/cache"));
        assert!(text.contains("path    = \"/mirror\""), "{text}");
        assert!(
            text.contains("exclude = [\"registry.terraform.io/hashicorp/aws\"]"),
            "{text}"
        );
    }
}
