//! Writes the synthesized stacks to disk in CDK for Terraform's layout, each with the provider
//! lock file, so plain `terraform` runs in those folders with the pinned, checksummed provider.

use crate::config::{self, Config};
use crate::stack::{PROVIDER_LOCK, StackOptions, stacks};
use crate::{CDKTF_VERSION, Error};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What synthesis wrote, for xtask to run terraform in.
#[derive(Clone, Debug)]
pub struct SynthOutput {
    /// The output directory (`.../cdktf.out`).
    pub out_dir: PathBuf,
    pub manifest: PathBuf,
    /// `(stack name, stack directory)` in apply order.
    pub stacks: Vec<(String, PathBuf)>,
    /// Managed resources per stack, for progress messages.
    pub resource_counts: Vec<usize>,
}

impl SynthOutput {
    /// The directory of one stack.
    pub fn stack_dir(&self, name: &str) -> Option<&Path> {
        self.stacks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }
}

/// `infra/cdktf.out`, where CDK for Terraform would write.
pub fn default_out_dir() -> PathBuf {
    deploy_files::workspace_root()
        .join("infra")
        .join("cdktf.out")
}

/// Local endpoint default for the emulator's `aws_endpoint` variable.
pub fn local_endpoint_from_env() -> String {
    std::env::var("INFRA_LOCAL_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5000".into())
}

/// Options as `synth` derives them: local state in `build/<env>/`, written relative to the
/// stack directory when the output is the default `infra/cdktf.out` (so the files are the same
/// on every machine) and absolute otherwise.
pub fn default_options(env: &str, out_dir: &Path) -> StackOptions {
    let local_state_dir = if same_dir(out_dir, &default_out_dir()) {
        format!("../../../../build/{env}")
    } else {
        deploy_files::workspace_root()
            .join("build")
            .join(env)
            .display()
            .to_string()
    };
    StackOptions {
        local_state_dir,
        local_endpoint: local_endpoint_from_env(),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::path::absolute(a), std::path::absolute(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Synthesizes environment `env` into `out_dir` (normally [`default_out_dir`]).
pub fn synth(env: &str, out_dir: &Path) -> Result<SynthOutput, Error> {
    let config = config::load(env)?;
    let options = default_options(env, out_dir);
    synth_with(&config, &options, out_dir)
}

/// The stacks as JSON values, without touching the disk (snapshot tests, checks).
pub fn render(config: &Config, options: &StackOptions) -> Vec<(String, Value)> {
    stacks(config, options)
        .into_iter()
        .map(|s| (s.name.clone(), s.to_json()))
        .collect()
}

/// Synthesizes a given configuration. Afterwards the output directory holds the new stacks and
/// no other (a stack removed from the code does not linger, as with CDKTF's wholesale
/// replacement), but it is never emptied first: each file is replaced atomically, and only when
/// its text changed. Deploys of an environment's stages read its bootstrap stack from here
/// while another deploy may be synthesizing the same environment; they must never find a file
/// missing or half-written (and, from the same source, find the very same files).
pub fn synth_with(
    config: &Config,
    options: &StackOptions,
    out_dir: &Path,
) -> Result<SynthOutput, Error> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let mut manifest_stacks = serde_json::Map::new();
    let mut written = Vec::new();
    let mut counts = Vec::new();
    let stacks = stacks(config, options);
    for stack in &stacks {
        let dir = out_dir.join("stacks").join(&stack.name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let file = dir.join("cdk.tf.json");
        let mut text =
            serde_json::to_string_pretty(&stack.to_json()).expect("JSON values serialize");
        text.push('\n');
        replace_if_changed(&file, &text).map_err(io(&file))?;
        // `terraform init` checks the provider package against these checksums.
        let lock = dir.join(".terraform.lock.hcl");
        replace_if_changed(&lock, PROVIDER_LOCK).map_err(io(&lock))?;
        manifest_stacks.insert(
            stack.name.clone(),
            json!({
                "name": stack.name,
                "constructPath": stack.name,
                "workingDirectory": format!("stacks/{}", stack.name),
                "synthesizedStackPath": format!("stacks/{}/cdk.tf.json", stack.name),
                "stackMetadataPath": format!("stacks/{}/cdk.tf.json", stack.name),
                "annotations": [],
                // Service and delivery state live in the bucket bootstrap creates.
                "dependencies": if stack.name == "bootstrap" { json!([]) } else { json!(["bootstrap"]) },
            }),
        );
        written.push((stack.name.clone(), dir));
        counts.push(stack.resource_count());
    }
    let manifest = out_dir.join("manifest.json");
    let body =
        json!({ "version": CDKTF_VERSION, "environment": config.name, "stacks": manifest_stacks });
    let mut text = serde_json::to_string_pretty(&body).expect("JSON values serialize");
    text.push('\n');
    replace_if_changed(&manifest, &text).map_err(io(&manifest))?;
    let stacks_dir = out_dir.join("stacks");
    for entry in std::fs::read_dir(&stacks_dir).map_err(io(&stacks_dir))? {
        let entry = entry.map_err(io(&stacks_dir))?;
        if !written
            .iter()
            .any(|(name, _)| entry.file_name() == name.as_str())
        {
            let path = entry.path();
            let removed = match entry.file_type().map_err(io(&path))?.is_dir() {
                true => std::fs::remove_dir_all(&path),
                false => std::fs::remove_file(&path),
            };
            match removed {
                // A synthesis beside this one removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                removed => removed.map_err(io(&path))?,
            }
        }
    }
    Ok(SynthOutput {
        out_dir: out_dir.to_owned(),
        manifest,
        stacks: written,
        resource_counts: counts,
    })
}

/// Writes `text` to `path` unless the file holds it already, through a temporary file beside it
/// renamed over it, so a reader sees the old file or the new one, never a missing or partial
/// one. The temporary file is named for this process and call: two syntheses at once never
/// write the same one.
fn replace_if_changed(path: &Path, text: &str) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}-{call}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
