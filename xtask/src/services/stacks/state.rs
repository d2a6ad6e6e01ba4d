//! What the stacks were last applied with, kept in `build/<env>/`: the record of the last
//! successful deploy (`last-deploy.json`) and the service stack's variables
//! (`artifacts.tfvars.json`). Deploy writes them; plan, destroy and the local stack read or
//! reset them, so they are defined once here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::base::aws::{self, Target};
use crate::base::env::{BOOTSTRAP_STACK, Env};
use crate::base::process;
use crate::services::artifacts::package::{self, Manifest};
use crate::services::stacks::synth;
use crate::services::stacks::terraform::Terraform;
use infra::constructs::storage;

/// `build/<env>/last-deploy.json`: what the last successful apply applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LastDeploy {
    /// Fingerprint per stack.
    pub stacks: BTreeMap<String, String>,
    pub artifacts_bucket: Option<String>,
    /// Package SHA-256 per function, to tell which functions changed.
    pub packages: BTreeMap<String, String>,
    /// Fingerprint of the service stack without the package variables: when
    /// it is unchanged, only code changed and `--hotswap` may skip Terraform.
    #[serde(default)]
    pub service_structure: Option<String>,
}

impl LastDeploy {
    /// `build/<env>/last-deploy.json`.
    pub fn file(env: &Env) -> PathBuf {
        env.dir().join("last-deploy.json")
    }

    /// The record, or an empty one when there is none (nothing applied yet, or it was reset).
    pub fn load(env: &Env) -> LastDeploy {
        process::read_json(&LastDeploy::file(env)).unwrap_or_default()
    }

    pub fn save(&self, env: &Env) -> Result<()> {
        process::write_json(&LastDeploy::file(env), self)
    }
}

/// The artifacts bucket: from the last deploy, else the bootstrap stack's outputs. A stage's
/// is its environment's; on an account it is found by its name (`<prefix>artifacts-<account
/// id>-<region>`, `infra::constructs::storage::bucket_name_of`), because a stage's credentials
/// may not read the bootstrap stack's state.
pub fn artifacts_bucket(env: &Env, target: &Target) -> Result<String> {
    if let Some(bucket) = LastDeploy::load(env).artifacts_bucket {
        return Ok(bucket);
    }
    if env.stage.is_some() {
        let base = env.base();
        if !env.emulated {
            let (account, _) = process::block_on(aws::caller_identity(target))?;
            return Ok(storage::bucket_name_of(
                &base.prefix,
                storage::ARTIFACTS_BUCKET,
                &account,
                &env.region,
            ));
        }
        synth::synthesize(&base)?;
        return artifacts_bucket(&base, target);
    }
    let tf = Terraform::new(env, BOOTSTRAP_STACK, target.terraform_env())?;
    tf.init()?;
    let outs = tf.outputs()?;
    outs.get("artifacts_bucket")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "the artifacts bucket of `{}` does not exist yet: run `cargo xtask deploy --env {0}` \
                 (or `cargo xtask bootstrap --env {0}` for a new AWS account)",
                env.name
            )
        })
}

/// SHA-256 over the stack's synthesized files, the variables file and the
/// target identity.
pub fn fingerprint(stack_dir: &Path, var_file: Option<&Path>, identity: &str) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(stack_dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".terraform")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".terraform.lock.hcl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{} is empty: synthesis produced no stack",
            stack_dir.display()
        );
    }
    for file in files.iter().map(PathBuf::as_path).chain(var_file) {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update(
            file.strip_prefix(stack_dir)
                .unwrap_or(file)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
    }
    hasher.update(identity.as_bytes());
    Ok(package::hex(&hasher.finalize()))
}

/// `build/<env>/artifacts.tfvars.json`: the service stack's variables.
pub fn write_tfvars(env: &Env, bucket: &str, manifest: &Manifest) -> Result<PathBuf> {
    let mut vars = serde_json::Map::new();
    vars.insert("artifacts_bucket".to_owned(), bucket.into());
    for (name, pkg) in &manifest.functions {
        vars.insert(format!("artifact_key_{name}"), pkg.s3_key.clone().into());
        vars.insert(
            format!("artifact_hash_{name}"),
            pkg.source_code_hash.clone().into(),
        );
    }
    let path = env.dir().join("artifacts.tfvars.json");
    let text = serde_json::to_string_pretty(&vars)? + "\n";
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        process::write_atomic(&path, text.as_bytes())?;
    }
    Ok(path)
}
