//! The selected environment: its configuration (owned by the infra crate) and
//! where its generated files live under `build/`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::base::release_strategy::Strategy;

/// The function packages, in deployment order, as their crates declare them (the catalog):
/// the Cargo packages, the binaries and the suffix of the Lambda function names.
pub fn functions() -> &'static [&'static str] {
    *catalog::NAMES
}

/// The Terraform stacks infra synthesizes per environment, in apply order.
pub const BOOTSTRAP_STACK: &str = "bootstrap";
pub const SERVICE_STACK: &str = "service";
/// Only for environments with `[delivery]`, and only `cargo xtask bootstrap`
/// applies it: the deploy role must not be able to change its own permissions.
pub const DELIVERY_STACK: &str = infra::DELIVERY_STACK;

/// The generated-files folder. `XTASK_BUILD_DIR` moves it so the integration
/// tests can run a whole deploy without touching the developer's own state.
pub fn build_root() -> PathBuf {
    match std::env::var_os("XTASK_BUILD_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => deploy_files::workspace_root().join("build"),
    }
}

/// CPU architecture of the Lambda functions (configuration `architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    pub fn parse(name: &str) -> Result<Arch> {
        match name {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            other => bail!("unknown architecture `{other}` (expected `arm64` or `x86_64`)"),
        }
    }

    /// The name Lambda and the configuration use.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The Rust target triple for Lambda's OS (glibc Linux).
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The architecture this xtask binary runs on, when it is one Lambda has.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Arm64),
            _ => None,
        }
    }
}

/// Everything a task needs to know about the environment it acts on.
#[derive(Debug, Clone)]
pub struct Env {
    pub name: String,
    /// Machine-readable output requested (`--json`).
    pub json: bool,
    pub root: PathBuf,
    pub build_root: PathBuf,
    pub region: String,
    pub arch: Arch,
    /// Every AWS name of the service stack starts with it: the environment's prefix, or a
    /// stage's (`<prefix><stage>-`).
    pub prefix: String,
    /// The stage acted on (`--stage`): a copy of the service stack with its own names, state
    /// and files under `build/<env>/stages/<stage>/`; `None` for the environment itself.
    pub stage: Option<String>,
    /// Deployed to the emulator on loopback rather than to AWS.
    pub emulated: bool,
    /// Packages are signed with AWS Signer before the service stack uses them
    /// (configuration `lambda.code_signing`; Lambda enforces the signature).
    pub code_signing: bool,
    /// How a deploy moves traffic to new versions (`[options.traffic_shifting]`).
    pub strategy: Strategy,
}

impl Env {
    /// Validates `name` against infra/environments and loads its config, for its stage `stage`
    /// when given (`--stage`, which the file must allow); `json` is the `--json` flag.
    pub fn load_stage(name: &str, stage: Option<&str>, json: bool) -> Result<Env> {
        let env = Env::load(name, json)?;
        let Some(stage) = stage else {
            return Ok(env);
        };
        env.config()?.for_stage(stage).map_err(|e| {
            anyhow::anyhow!("--stage {stage}: {e} (infra/environments/{name}.toml)")
        })?;
        Ok(env.staged(stage))
    }

    /// The environment's stage `stage`, whose name was checked when it was made.
    pub fn staged(&self, stage: &str) -> Env {
        let mut staged = self.base();
        staged.prefix = infra::config::stage_prefix(&staged.prefix, stage);
        staged.stage = Some(stage.to_owned());
        staged
    }

    /// The environment's configuration, for the stage when there is one.
    pub fn config(&self) -> Result<infra::Config> {
        let config = infra::load_config(&self.name).map_err(|e| anyhow::anyhow!("{e}"))?;
        match &self.stage {
            Some(stage) => config.for_stage(stage).map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(config),
        }
    }

    /// The environment itself, for what its stages share with it (the emulator, the
    /// bootstrap stack, the packages).
    pub fn base(&self) -> Env {
        let mut base = self.clone();
        if let Some(stage) = base.stage.take() {
            let staged = infra::config::stage_prefix("", &stage);
            base.prefix.truncate(base.prefix.len() - staged.len());
        }
        base
    }

    /// `environment` or `environment/stage`, for messages.
    pub fn label(&self) -> String {
        match &self.stage {
            Some(stage) => format!("{}/{stage}", self.name),
            None => self.name.clone(),
        }
    }

    /// Validates `name` against infra/environments and loads its config; `json` is the
    /// `--json` flag.
    pub fn load(name: &str, json: bool) -> Result<Env> {
        let root = deploy_files::workspace_root();
        let known = available(&root)?;
        if !known.iter().any(|known| known == name) {
            bail!(
                "unknown environment `{}`; environments found in infra/environments: {}",
                name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
        let config = infra::load_config(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Env {
            name: name.to_owned(),
            json,
            build_root: build_root(),
            root,
            arch: Arch::parse(config.lambda.architecture.as_str())?,
            region: config.region,
            prefix: config.prefix,
            stage: None,
            emulated: config.emulator,
            code_signing: config.lambda.code_signing,
            strategy: Strategy::from_config(config.options.traffic_shifting.as_ref()),
        })
    }

    /// `build/<env>`: state, outputs, logs and fingerprints of this environment; a stage's
    /// are in `build/<env>/stages/<stage>`.
    pub fn dir(&self) -> PathBuf {
        match &self.stage {
            Some(stage) => self.stages_dir().join(stage),
            None => self.base_dir(),
        }
    }

    /// `build/<env>`, whatever the stage: what the stages share (the emulator's record, the
    /// bootstrap stack's state).
    pub fn base_dir(&self) -> PathBuf {
        self.build_root.join(&self.name)
    }

    /// `build/<env>/stages`: one folder per stage (the same layout as the state's key prefix,
    /// `infra::constructs::state::STAGES_DIR`).
    pub fn stages_dir(&self) -> PathBuf {
        self.base_dir().join(infra::constructs::state::STAGES_DIR)
    }

    /// `build/dist`: the packages and their manifest (shared by environments
    /// of the same architecture; the manifest records which one).
    pub fn dist(&self) -> PathBuf {
        self.build_root.join("dist")
    }

    /// The stages with a folder under `build/<env>/stages/`: those deployed from this machine
    /// (all of an emulator's).
    pub fn local_stages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.stages_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    /// Where infra writes the synthesized stacks. Kept under the build folder
    /// when that is moved, so parallel test runs do not overwrite each other.
    pub fn synth_out(&self) -> PathBuf {
        if self.stage.is_some() {
            // Beside its state: stages deployed at the same time never share a folder.
            return self.dir().join("cdktf.out");
        }
        if std::env::var_os("XTASK_BUILD_DIR").is_some_and(|d| !d.is_empty()) {
            self.build_root.join("cdktf.out")
        } else {
            self.root.join("infra").join("cdktf.out")
        }
    }

    pub fn stack_dir(&self, stack: &str) -> PathBuf {
        self.synth_out().join("stacks").join(stack)
    }

    pub fn function_name(&self, function: &str) -> String {
        format!("{}{function}", self.prefix)
    }

    pub fn outputs_file(&self) -> PathBuf {
        self.dir().join(deploy_files::OUTPUTS_FILE)
    }

    /// The names of the outputs Terraform marks `sensitive`, beside the outputs file.
    pub fn sensitive_outputs_file(&self) -> PathBuf {
        self.dir().join(deploy_files::SENSITIVE_OUTPUTS_FILE)
    }
}

/// The environment names, from the files in infra/environments.
pub fn available(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("infra").join("environments");
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let path = entry.path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}
