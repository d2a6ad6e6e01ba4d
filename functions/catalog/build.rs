//! Reads every function's declaration from the workspace at compile time and writes
//! `$OUT_DIR/functions.rs`, the expression behind `catalog::FUNCTIONS`. A bad declaration
//! fails the build with the manifest's path and what is wrong.

// Shared with the library, which uses the parts the build script does not.
#[path = "src/manifest.rs"]
mod manifest;
#[path = "src/names.rs"]
mod names;
#[allow(dead_code)]
#[path = "src/queues.rs"]
mod queues;
#[allow(dead_code)]
#[path = "src/schedules.rs"]
mod schedules;
#[allow(dead_code)]
#[path = "src/secrets.rs"]
mod secrets;
#[allow(dead_code)]
#[path = "src/tables.rs"]
mod tables;

use std::path::Path;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // Read at run time, not compiled in (`env!`): a copy of the workspace (the scaffold
    // scenario's) reuses this compiled script, which must read the copy's manifests.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let root = Path::new(&manifest_dir).join("../..");
    let read = |path: &Path| {
        // Exactly the manifests read, never `functions/`: watching the directory would make
        // cargo rerun this (and rebuild infra and xtask) after every edit of a handler. Named
        // relative to this package (`../../Cargo.toml`), as cargo records them: an absolute
        // name made every copy of the workspace (the scaffold scenario's) rerun this script
        // and rebuild all that reads the catalog, though no manifest had changed.
        let watched = path.strip_prefix(&manifest_dir).unwrap_or(path);
        println!("cargo::rerun-if-changed={}", watched.display());
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let root_manifest = root.join("Cargo.toml");
    let root_text = read(&root_manifest)?;
    let members = manifest::function_members(&root_text)
        .map_err(|e| format!("{}: {e}", root_manifest.display()))?;
    let mut functions = Vec::new();
    for member in members {
        let path = root.join(&member).join("Cargo.toml");
        let file = format!("{member}/Cargo.toml");
        functions.extend(manifest::parse(&file, &read(&path)?)?);
    }
    manifest::check_all(&functions)?;
    let secret_properties = manifest::secret_properties(&root_text, &functions)
        .map_err(|e| format!("{}: {e}", root_manifest.display()))?;
    let out = std::env::var("OUT_DIR").map_err(|e| e.to_string())?;
    let write = |file: &str, rust: String| {
        let path = Path::new(&out).join(file);
        std::fs::write(&path, rust).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("functions.rs", manifest::to_rust(&functions))?;
    write("names.rs", manifest::names_to_rust(&functions))?;
    write(
        "generated.rs",
        manifest::generated_to_rust(&secret_properties),
    )
}
