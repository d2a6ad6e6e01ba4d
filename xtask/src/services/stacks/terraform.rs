//! Running Terraform on a synthesized stack: offline provider installation,
//! state kept outside `cdktf.out` (synth owns that folder), output streamed
//! under a progress display and terraform's own error shown on failure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::services::artifacts::package;
use crate::services::stacks::outputs::Outputs;
use crate::services::stacks::provider::ProviderServer;

/// One stack of one environment, ready to run terraform commands on.
pub struct Terraform<'a> {
    env: &'a Env,
    stack: &'static str,
    /// Extra environment for the terraform process (emulator endpoint and
    /// credentials for `local`).
    vars: Vec<(String, String)>,
    /// Whether the commands that walk the graph share one provider process
    /// ([`ProviderServer`]: the emulator, one provider block), and that process once started.
    shares_provider: bool,
    provider: RefCell<Option<ProviderServer>>,
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
        make_states_private(env)?;
        let shares_provider = env.emulated && {
            let json: serde_json::Value = process::read_json(&dir.join("cdk.tf.json"))?;
            json.pointer("/provider/aws")
                .and_then(|blocks| blocks.as_array())
                .is_some_and(|blocks| blocks.len() == 1)
        };
        Ok(Terraform {
            env,
            stack,
            vars: aws_env,
            shares_provider,
            provider: RefCell::new(None),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("terraform");
        self.go_program_env(&mut command);
        command
            .args(args)
            .current_dir(self.env.stack_dir(self.stack))
            // The machine may point this at a missing file; ours always exists.
            .env("TF_CLI_CONFIG_FILE", cli_config_path(self.env))
            // Provider installs and backend settings survive re-synthesis.
            .env("TF_DATA_DIR", self.data_dir())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            // No call home (checkpoint-api.hashicorp.com, for version and security notices)
            // from a deploy: it leaks that and where a deploy runs, and offline it waits on a
            // connection that cannot succeed.
            .env("CHECKPOINT_DISABLE", "1");
        // Terraform writes the local state (and its backup), which holds the API key's value,
        // with 0666 less the umask: with 077 it creates them 0600 from the start.
        // SAFETY: the closure runs in the child between fork and exec; umask(2) is
        // async-signal-safe and touches no memory.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        command
    }

    /// What Terraform and the provider process both get: the emulator's endpoint and
    /// credentials, and the garbage collector's setting.
    fn go_program_env(&self, command: &mut Command) {
        if std::env::var_os("GOGC").is_none() {
            command.env("GOGC", infra::TERRAFORM_GOGC);
        }
        for (key, value) in &self.vars {
            command.env(key, value);
        }
    }

    /// A command that walks the graph (apply, plan, destroy): attached to this stack's one
    /// provider process where it has one, started at the first such command.
    fn walking_command(&self, args: &[&str]) -> Result<Command> {
        let mut command = self.command(args);
        if self.shares_provider {
            let mut provider = self.provider.borrow_mut();
            if provider.is_none() {
                *provider = ProviderServer::start(
                    &self.data_dir(),
                    |c| self.go_program_env(c),
                    &self.log("provider"),
                )?;
            }
            if let Some(provider) = provider.as_ref() {
                command.env("TF_REATTACH_PROVIDERS", provider.reattach());
            }
        }
        Ok(command)
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
    /// Init costs seconds (it checksums the provider), and synth writes the
    /// committed lock file over the stack folder's every time. So the lock file is kept
    /// beside the data dir and init runs again only when what it depends on
    /// (the `terraform` block, the backend arguments, the CLI config) changed.
    ///
    /// The provider is pinned exactly (`infra::stack::AWS_PROVIDER_VERSION`). For real
    /// accounts, where init runs with the deploy role's credentials, it must also match the
    /// committed lock file's checksums, which synth writes into the stack folder, and init
    /// may not change them (`-lockfile=readonly`). The emulator holds nothing worth a stolen
    /// credential, and the committed checksums cover only the platforms listed there, so for
    /// it init records the checksums of whatever machine it runs on.
    pub fn init(&self) -> Result<Duration> {
        let mut args = vec!["init", "-input=false", "-no-color"];
        let backend;
        let lock = self.env.stack_dir(self.stack).join(".terraform.lock.hcl");
        if self.env.emulated {
            backend = format!("-backend-config=path={}", self.state_file().display());
            args.push(&backend);
            args.push("-reconfigure");
            match std::fs::remove_file(&lock) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("removing {}", lock.display()));
                }
                _ => {}
            }
        } else {
            args.push("-lockfile=readonly");
        }
        let stamp = self.init_stamp(&args)?;
        let stamp_file = self.data_dir().join("xtask-init.stamp");
        let saved_lock = self.data_dir().join("xtask.terraform.lock.hcl");
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
            init_message,
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
        hasher.update(infra::stack::PROVIDER_LOCK);
        Ok(package::hex(&hasher.finalize()))
    }

    /// The local state file of an emulated environment.
    pub fn state_file(&self) -> PathBuf {
        self.env.dir().join(format!("{}.tfstate", self.stack))
    }

    pub fn apply(&self, var_file: Option<&Path>) -> Result<Changes> {
        self.apply_with(var_file, &[])
    }

    /// `terraform apply` without reading every resource back first: for a
    /// change xtask knows touches only the function code (see deploy).
    pub fn apply_without_refresh(&self, var_file: Option<&Path>) -> Result<Changes> {
        self.apply_with(var_file, &["-refresh=false"])
    }

    fn apply_with(&self, var_file: Option<&Path>, extra: &[&str]) -> Result<Changes> {
        let mut args = vec!["apply", "-input=false", "-no-color", "-auto-approve"];
        args.extend_from_slice(extra);
        self.changing("apply", args, var_file)
    }

    /// Runs `apply` or `destroy`, tallying what changed, and prints the tally.
    fn changing(&self, action: &str, args: Vec<&str>, var_file: Option<&Path>) -> Result<Changes> {
        let var_arg = var_file.map(|f| format!("-var-file={}", f.display()));
        let args: Vec<&str> = args.into_iter().chain(var_arg.as_deref()).collect();
        let mut changes = Changes::default();
        let elapsed = progress::stream(
            &self.step(action),
            self.walking_command(&args)?,
            &self.log(action),
            |line| changes.observe(line),
        )?;
        changes.seconds = elapsed.as_secs_f64();
        for line in changes.summary() {
            progress::note(line);
        }
        Ok(changes)
    }

    /// `terraform plan`, printed in full (the plan is what the user asked for).
    pub fn plan(&self, var_file: Option<&Path>) -> Result<()> {
        let mut args = vec!["plan", "-input=false", "-no-color"];
        let var_arg = var_file.map(|f| format!("-var-file={}", f.display()));
        if let Some(arg) = &var_arg {
            args.push(arg);
        }
        let status = self
            .walking_command(&args)?
            .stdout(std::io::stderr())
            .status()
            .with_context(|| format!("{}: could not start terraform", self.step("plan")))?;
        if !status.success() {
            bail!("{} failed ({status})", self.step("plan"));
        }
        Ok(())
    }

    pub fn destroy(&self, var_file: Option<&Path>) -> Result<Changes> {
        let args = vec!["destroy", "-input=false", "-no-color", "-auto-approve"];
        self.changing("destroy", args, var_file)
    }

    /// `terraform output -json`: the values, and which ones are sensitive.
    pub fn outputs(&self) -> Result<Outputs> {
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
        Ok(Outputs::from_terraform(raw))
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
            init_message,
        )
    }
}

/// What one `terraform apply` or `destroy` did, tallied from its output as it streams: the
/// summary a deploy prints instead of Terraform's two thousand lines (which stay in the log).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Changes {
    /// Resources created, changed and destroyed, per resource type.
    pub added: BTreeMap<String, u32>,
    pub changed: BTreeMap<String, u32>,
    pub destroyed: BTreeMap<String, u32>,
    /// The titles of Terraform's warnings (the details are in the log).
    pub warnings: Vec<String>,
    /// How many resource operations the plan announced (add + change + destroy).
    #[serde(skip)]
    planned: u32,
    pub seconds: f64,
}

impl Changes {
    /// Tallies one line of terraform's output; returns the progress message it makes, if any.
    fn observe(&mut self, line: &str) -> Option<String> {
        if let Some(plan) = line.strip_prefix("Plan: ") {
            // "Plan: 82 to add, 0 to change, 0 to destroy."
            self.planned = plan
                .split(", ")
                .filter_map(|part| part.split(' ').next()?.parse::<u32>().ok())
                .sum();
            return Some(line.trim_end_matches('.').to_owned());
        }
        if let Some(title) = line.strip_prefix("Warning: ") {
            self.warnings.push(title.to_owned());
            return None;
        }
        let (address, event) = line.split_once(": ")?;
        // "... Creation complete after 0s [id=prod-service-...]": the id is noise on screen.
        let line = line.split(" [id=").next().unwrap_or(line);
        let tally = if event.starts_with("Creation complete") {
            &mut self.added
        } else if event.starts_with("Modifications complete") {
            &mut self.changed
        } else if event.starts_with("Destruction complete") {
            &mut self.destroyed
        } else if event.starts_with("Creating...")
            || event.starts_with("Modifying...")
            || event.starts_with("Destroying...")
            || event.starts_with("Still ")
        {
            return Some(format!("{} {line}", self.count()));
        } else {
            return None;
        };
        *tally.entry(resource_type(address).to_owned()).or_default() += 1;
        Some(format!("{} {line}", self.count()))
    }

    fn done(&self) -> u32 {
        [&self.added, &self.changed, &self.destroyed]
            .iter()
            .flat_map(|m| m.values())
            .sum()
    }

    fn count(&self) -> String {
        if self.planned > 0 {
            format!("[{}/{}]", self.done(), self.planned)
        } else {
            format!("[{}]", self.done())
        }
    }

    /// "82 added, 0 changed, 0 destroyed in 48 s" and one line per kind of change listing
    /// the resource types, for the deploy's output.
    pub fn summary(&self) -> Vec<String> {
        let total = |m: &BTreeMap<String, u32>| m.values().sum::<u32>();
        let mut lines = vec![format!(
            "{} added, {} changed, {} destroyed in {:.0} s",
            total(&self.added),
            total(&self.changed),
            total(&self.destroyed),
            self.seconds
        )];
        for (what, tally) in [
            ("added", &self.added),
            ("changed", &self.changed),
            ("destroyed", &self.destroyed),
        ] {
            // Wrapped at about 100 columns: a service stack has some 25 resource types.
            let mut line = format!("  {what}:");
            let indent = what.len() + 3;
            for (kind, n) in tally {
                let item = format!(" {kind} {n},");
                if line.len() + item.len() > 100 && line.len() > indent {
                    lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
                }
                line.push_str(&item);
            }
            if !tally.is_empty() {
                lines.push(line.trim_end_matches(',').to_owned());
            }
        }
        for warning in &self.warnings {
            lines.push(format!("  warning: {warning}"));
        }
        lines
    }
}

/// `aws_lambda_function` from `aws_lambda_function.users`, `module.m.aws_x.y["k"]` or
/// `data.aws_iam_policy_document.z`.
fn resource_type(address: &str) -> &str {
    let mut parts = address.split('.');
    loop {
        match parts.next() {
            Some("module") => {
                parts.next();
            }
            Some("data") => continue,
            Some(kind) => return kind,
            None => return address,
        }
    }
}

/// Progress messages for `terraform init`: the provider it is installing.
fn init_message(line: &str) -> Option<String> {
    (line.starts_with("- ") || line.starts_with("Initializing")).then(|| line.to_owned())
}

/// Where `terraform init` will find the hashicorp/aws provider, checked in milliseconds so a
/// deploy that cannot get it stops before it compiles anything (the first compile takes
/// minutes; Terraform's own "failed to query available provider packages" came after it).
///
/// In the order Terraform itself looks: `TF_PROVIDER_MIRROR` (our CLI config's filesystem
/// mirror), Terraform's implied local mirror directories, the plugin cache of an earlier
/// download under `build/`, and last the registry, which must then answer on port 443.
pub fn provider_source(build_root: &Path) -> Result<String> {
    const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";
    let holds_provider = |dir: &Path| {
        std::fs::read_dir(dir.join(PROVIDER)).is_ok_and(|mut versions| versions.next().is_some())
    };
    if let Some(mirror) = std::env::var_os("TF_PROVIDER_MIRROR").filter(|m| !m.is_empty()) {
        let mirror = PathBuf::from(mirror);
        if holds_provider(&mirror) {
            return Ok(format!("mirror {} (TF_PROVIDER_MIRROR)", mirror.display()));
        }
        bail!(
            "TF_PROVIDER_MIRROR is {}, but it holds no {PROVIDER}; point it at a Terraform \
             filesystem mirror with that provider (`terraform providers mirror DIR` makes one), \
             or unset it to download the provider from the registry",
            mirror.display()
        );
    }
    if let Some(dir) = implied_mirror_dirs()
        .into_iter()
        .find(|d| holds_provider(d))
    {
        return Ok(format!("local mirror {}", dir.display()));
    }
    let cache = build_root.join("terraform-plugin-cache");
    if holds_provider(&cache) {
        return Ok(format!("plugin cache {}", cache.display()));
    }
    // A stack initialised earlier keeps its provider in its data dir
    // (`build/<env>/terraform/<stack>/providers`), and init is skipped then.
    let installed = std::fs::read_dir(build_root)
        .into_iter()
        .flatten()
        .filter_map(|env_dir| std::fs::read_dir(env_dir.ok()?.path().join("terraform")).ok())
        .flatten()
        .filter_map(|stack_dir| Some(stack_dir.ok()?.path().join("providers")))
        .find(|providers| holds_provider(providers));
    if let Some(providers) = installed {
        return Ok(format!("already installed in {}", providers.display()));
    }
    if registry_reachable() {
        return Ok("registry.terraform.io".to_owned());
    }
    bail!(
        "Terraform cannot get the hashicorp/aws provider: registry.terraform.io does not answer \
         and no local mirror holds it. On a machine without internet access, set \
         TF_PROVIDER_MIRROR to a Terraform filesystem mirror that holds {PROVIDER} (or put one \
         in ~/.terraform.d/plugins) and run again. Nothing was built or changed"
    )
}

/// Terraform's implied local mirror directories on Unix, in its search order
/// (<https://developer.hashicorp.com/terraform/cli/config/config-file#implied-local-mirror-directories>).
fn implied_mirror_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".terraform.d").join("plugins"));
        dirs.push(
            home.join(".local")
                .join("share")
                .join("terraform")
                .join("plugins"),
        );
    }
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".to_owned());
    dirs.extend(
        data_dirs
            .split(':')
            .map(|d| Path::new(d).join("terraform").join("plugins")),
    );
    dirs
}

/// Whether the registry (or the HTTPS proxy Terraform would use) accepts a TCP connection
/// within a few seconds: no DNS or no route answers at once, a firewall that drops within 5 s.
fn registry_reachable() -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let proxy = ["HTTPS_PROXY", "https_proxy"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()));
    let host = match &proxy {
        Some(url) => {
            let rest = url.split("://").last().unwrap_or(url);
            let authority = rest.split('/').next().unwrap_or(rest);
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            if authority.contains(':') {
                authority.to_owned()
            } else {
                format!("{authority}:80")
            }
        }
        None => "registry.terraform.io:443".to_owned(),
    };
    let Ok(addrs) = host.to_socket_addrs() else {
        return false;
    };
    addrs
        .take(2)
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok())
}

/// Local state files (`build/<env>/<stack>.tfstate` and their backups) written by an older
/// xtask, or by terraform run by hand, may be world-readable; terraform keeps an existing
/// file's mode when it rewrites it, so they are tightened before every run.
fn make_states_private(env: &Env) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(env.dir()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().contains(".tfstate") {
            process::make_private(&entry.path())?;
        }
    }
    Ok(())
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
    fn an_apply_is_tallied_by_resource_type_from_terraforms_own_lines() {
        let mut changes = Changes::default();
        for line in [
            "Plan: 3 to add, 1 to change, 1 to destroy.",
            "aws_s3_bucket.artifacts: Creating...",
            "aws_s3_bucket.artifacts: Creation complete after 1s [id=b]",
            "aws_lambda_function.users: Still creating... [10s elapsed]",
            "aws_lambda_function.users: Creation complete after 12s [id=u]",
            "module.api.aws_lambda_permission.invoke[\"users\"]: Creation complete after 0s",
            "data.aws_iam_policy_document.x: Read complete after 0s",
            "aws_lambda_alias.live: Modifications complete after 1s [id=a]",
            "aws_sqs_queue.dlq: Destruction complete after 2s",
            "Warning: Argument is deprecated",
        ] {
            changes.observe(line);
        }
        assert_eq!(changes.count(), "[5/5]");
        assert_eq!(
            changes.added.keys().collect::<Vec<_>>(),
            [
                "aws_lambda_function",
                "aws_lambda_permission",
                "aws_s3_bucket"
            ]
        );
        assert_eq!(changes.changed["aws_lambda_alias"], 1);
        assert_eq!(changes.destroyed["aws_sqs_queue"], 1);
        changes.seconds = 12.4;
        let summary = changes.summary();
        assert_eq!(summary[0], "3 added, 1 changed, 1 destroyed in 12 s");
        assert!(
            summary
                .iter()
                .any(|l| l == "  warning: Argument is deprecated")
        );
        assert!(summary.iter().all(|l| l.len() <= 110), "{summary:#?}");
    }

    #[test]
    fn the_resource_type_is_found_behind_modules_and_data() {
        assert_eq!(resource_type("aws_iam_role.users"), "aws_iam_role");
        assert_eq!(resource_type("module.a.module.b.aws_x.y[\"k\"]"), "aws_x");
        assert_eq!(
            resource_type("data.aws_caller_identity.me"),
            "aws_caller_identity"
        );
    }

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
