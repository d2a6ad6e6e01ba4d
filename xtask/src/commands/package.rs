//! `cargo xtask package`: reproducible `bootstrap` zips keyed by content hash,
//! and the manifest deploy and the local API server read.

use anyhow::Result;

use crate::base::env::Env;
use crate::base::{process, progress};
use crate::cli::PackageArgs;
use crate::services::artifacts::package::{build_check_package, human_bytes};

pub fn run(env: &Env, args: PackageArgs) -> Result<()> {
    let manifest = build_check_package(env, args.prebuilt.as_deref())?;
    let mut human = String::new();
    for (name, package) in &manifest.functions {
        human.push_str(&format!(
            "{name:<9} {:>10}  {}  {}\n",
            human_bytes(package.bytes),
            &package.sha256[..12],
            package.zip
        ));
    }
    human.push_str(&format!(
        "manifest: {}",
        process::display_path(&env.root, &env.dist().join("manifest.json"))
    ));
    progress::finish(env.json, &serde_json::to_value(&manifest)?, human);
    Ok(())
}
