//! `cargo xtask new NAME (--route "GET /items" | --queue jobs | --schedule "rate(5 minutes)")
//! [--table users:read] [--secret payments-key]`: scaffolds a function crate that
//! `cargo xtask deploy` serves at once, and for routes writes its OpenAPI fragment.

use anyhow::{Context, Result};

use crate::base::progress;
use crate::cli::NewArgs;
use crate::services::scaffold::{self, Trigger};

pub fn run(json: bool, args: NewArgs) -> Result<()> {
    let root = deploy_files::workspace_root();
    let name = &args.name;
    // The command line allows exactly one kind (the `trigger` group).
    let trigger = match (&args.queue, &args.schedule) {
        (Some(queue), _) => Trigger::Queue {
            name: queue,
            batch_size: args.batch_size,
        },
        (None, Some(expression)) => Trigger::Schedule { expression },
        (None, None) => Trigger::Routes(&args.routes),
    };
    let spec = scaffold::Spec {
        trigger,
        tables: &args.tables,
        secrets: &args.secrets,
    };
    let plan = scaffold::plan(&root, name, &spec)
        .with_context(|| format!("refusing to create `{name}`; nothing was written"))?;
    progress::step(format!("creating functions/{name}"));
    scaffold::write(&root, &plan)?;
    // For routes the fragment is what utoipa makes of the handlers, so the crate's own test
    // writes it (and service-common's the assembled document); either way this proves the
    // crate compiles.
    let built = match trigger {
        Trigger::Routes(_) => scaffold::refresh_openapi(&root, &[name, "service-common"]),
        Trigger::Queue { .. } | Trigger::Schedule { .. } => scaffold::compile_tests(&root, name),
    };
    if let Err(error) = built {
        scaffold::remove(&root, name, &plan.dir)?;
        return Err(error.context(format!("functions/{name} did not build; it was removed")));
    }
    let mut files = plan.files();
    // What invokes it: the JSON result's key and value, the summary's words, and how to try it.
    let (key, value, invoked_by, try_it) = match trigger {
        Trigger::Routes(routes) => {
            files.push(format!("functions/{name}/openapi.json"));
            let routes: Vec<String> = routes
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            let invoked_by = routes.join(", ");
            let try_it = format!("cargo xtask invoke {name} --example rest");
            ("routes", routes.into(), invoked_by, try_it)
        }
        Trigger::Queue { name: queue, .. } => (
            "queue",
            queue.into(),
            format!("consumes the queue `{queue}`"),
            format!("cargo test -p {name}"),
        ),
        Trigger::Schedule { expression } => (
            "schedule",
            expression.into(),
            format!("runs on {expression}"),
            format!("cargo xtask invoke {name} --schedule"),
        ),
    };
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
        try_it,
        format!("cargo xtask logs {name}"),
        format!("cargo xtask remove {name}"),
    ]);
    let documented = if matches!(trigger, Trigger::Routes(_)) {
        " functions/openapi.json documents its routes."
    } else {
        ""
    };
    let human = format!(
        "created the function `{name}` ({invoked_by}):\n  {}\nand entered functions/{name} in \
         Cargo.toml's members and default-members.{documented}\n\
         Its declaration is [package.metadata.function] in functions/{name}/Cargo.toml.\n\
         Next:\n  {}",
        files.join("\n  "),
        next.join("\n  ")
    );
    let mut json_out = serde_json::json!({
        "function": name, "files": files, "next": next,
    });
    json_out[key] = value;
    progress::finish(json, &json_out, human);
    Ok(())
}
