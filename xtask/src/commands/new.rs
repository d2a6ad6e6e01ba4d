//! `cargo xtask new NAME --route "GET /items" [--table users:read] [--secret payments-key]`: scaffolds a function
//! crate that `cargo xtask deploy` serves at once, and writes its OpenAPI fragment.

use anyhow::{Context, Result};

use crate::base::progress;
use crate::cli::NewArgs;
use crate::services::scaffold;

pub fn run(json: bool, args: NewArgs) -> Result<()> {
    let root = deploy_files::workspace_root();
    let name = &args.name;
    let spec = scaffold::Spec {
        routes: &args.routes,
        tables: &args.tables,
        secrets: &args.secrets,
    };
    let plan = scaffold::plan(&root, name, &spec)
        .with_context(|| format!("refusing to create `{name}`; nothing was written"))?;
    progress::step(format!("creating functions/{name}"));
    scaffold::write(&root, &plan)?;
    // The fragment is what utoipa makes of the handlers, so the crate's own test writes it
    // (and service-common's the assembled document); this also proves the crate compiles.
    if let Err(error) = scaffold::refresh_openapi(&root, &[name, "service-common"]) {
        scaffold::remove(&root, name, &plan.dir)?;
        return Err(error.context(format!("functions/{name} did not build; it was removed")));
    }
    let mut files = plan.files();
    files.push(format!("functions/{name}/openapi.json"));
    let routes: Vec<String> = args
        .routes
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let mut next = vec!["cargo xtask deploy".to_owned()];
    // The deploy creates each secret empty; the function answers 500 where it needs one
    // until it is set.
    next.extend(
        args.secrets
            .iter()
            .map(|secret| format!("cargo xtask secret set {secret}")),
    );
    next.extend([
        "cargo xtask watch".to_owned(),
        format!("cargo xtask invoke {name} --example rest"),
        format!("cargo xtask logs {name}"),
        format!("cargo xtask remove {name}"),
    ]);
    let human = format!(
        "created the function `{name}` ({}):\n  {}\nand entered functions/{name} in Cargo.toml's \
         members and default-members; functions/openapi.json documents its routes.\n\
         Its declaration is [package.metadata.function] in functions/{name}/Cargo.toml.\n\
         Next:\n  {}",
        routes.join(", "),
        files.join("\n  "),
        next.join("\n  ")
    );
    let json_out = serde_json::json!({
        "function": name, "routes": routes, "files": files, "next": next,
    });
    progress::finish(json, &json_out, human);
    Ok(())
}
