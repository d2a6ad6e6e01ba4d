//! `cargo xtask new` and `cargo xtask remove`: a function crate written from a few flags, and
//! taken out again.
//!
//! A function is its crate: the declaration in its manifest (`[package.metadata.function]`)
//! is all infra, the local API server, packaging and smoke read (through the catalog), so
//! adding the crate to the workspace's `members` is the whole registration. Everything is
//! checked before anything is written, with the catalog's own reader and checks (what every
//! tool runs when it starts), against the manifests on disk; a failed write removes what was
//! written. No tool is compiled again for it: the catalog is read at run time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use catalog::manifest;
use toml_edit::{DocumentMut, Value};

use crate::base::progress;

/// The root manifest's lists a function crate is entered in.
const MEMBER_LISTS: [&str; 2] = ["members", "default-members"];

/// What a `--table` flag asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `GetItem` and `Query`.
    Read,
    /// Read, plus `PutItem`, `UpdateItem` and `DeleteItem`.
    Write,
}

/// One `--table TABLE[:read|:write][:INDEX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableGrant {
    pub table: String,
    pub access: Access,
    /// An index to `Query` too (a grant on the index's own resource).
    pub index: Option<String>,
}

impl TableGrant {
    /// Parses `users`, `users:write`, `users:read:by-kind`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let table = parts.next().unwrap_or_default().to_owned();
        let access = match parts.next() {
            None | Some("read") => Access::Read,
            Some("write") => Access::Write,
            Some(other) => {
                return Err(format!(
                    "`{other}` in `{text}`: the access is `read` or `write` (TABLE[:read|:write][:INDEX])"
                ));
            }
        };
        let index = parts.next().map(str::to_owned);
        if table.is_empty() || parts.next().is_some() || index.as_deref() == Some("") {
            return Err(format!(
                "`{text}`: give a table as TABLE[:read|:write][:INDEX], e.g. users:read"
            ));
        }
        Ok(Self {
            table,
            access,
            index,
        })
    }
}

/// One `--route "METHOD /path"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: String,
    pub path: String,
}

impl RouteSpec {
    /// Parses `GET /items/{id}`; the catalog checks the method and path themselves.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_whitespace().collect::<Vec<_>>()[..] {
            [method, path] => Ok(Self {
                method: method.to_ascii_uppercase(),
                path: path.to_owned(),
            }),
            _ => Err(format!(
                "`{text}`: give a route as \"METHOD /path\", e.g. \"GET /items/{{id}}\""
            )),
        }
    }

    /// `GET /items/{id}` -> `GetItemsId`: the operation's Rust variant.
    fn variant(&self) -> String {
        let mut words = vec![self.method.to_ascii_lowercase()];
        words.extend(
            self.path
                .split(['/', '{', '}', '-', '.', '_'])
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase),
        );
        words.iter().map(|w| capitalise(w)).collect()
    }

    /// `GET /items/{id}` -> `get_items_id`: the handler's function name.
    fn handler(&self) -> String {
        let variant = self.variant();
        let mut out = String::new();
        for (i, c) in variant.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The path parameters (`{id}` -> `id`).
    fn parameters(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// A checked function crate, ready to write.
pub struct Scaffold {
    pub name: String,
    /// `functions/<name>`.
    pub dir: PathBuf,
    /// Relative path -> contents.
    files: Vec<(&'static str, String)>,
}

impl Scaffold {
    /// The files it writes, relative to the workspace root.
    pub fn files(&self) -> Vec<String> {
        self.files
            .iter()
            .map(|(path, _)| format!("functions/{}/{path}", self.name))
            .collect()
    }
}

/// What invokes a scaffolded function: one kind per crate, since each kind has its own
/// handler signature (an API Gateway request, an SQS batch, a Scheduled Event).
#[derive(Clone, Copy, Debug)]
pub enum Trigger<'a> {
    /// `--route`: the routes it serves.
    Routes(&'a [RouteSpec]),
    /// `--queue [--batch-size]`: the queue it consumes; the catalog's default batch size
    /// without one.
    Queue {
        name: &'a str,
        batch_size: Option<u32>,
    },
    /// `--schedule`: the expression EventBridge Scheduler invokes it on.
    Schedule { expression: &'a str },
}

/// What a function crate is made of: what invokes it, the tables it may use and the secrets it
/// reads (`--route`/`--queue`/`--schedule`, `--table`, `--secret`).
pub struct Spec<'a> {
    pub trigger: Trigger<'a>,
    pub tables: &'a [TableGrant],
    pub secrets: &'a [String],
}

/// Checks `name` and `spec` against the workspace at `root` and returns what to write; writes
/// nothing.
pub fn plan(root: &Path, name: &str, spec: &Spec<'_>) -> Result<Scaffold> {
    // What the manifest and the sources quote is checked first (by the catalog's own rules),
    // so a refused value is refused in the catalog's words, not as a broken TOML string.
    match spec.trigger {
        Trigger::Routes([]) => {
            bail!("give at least one --route \"METHOD /path\": a function serves a route")
        }
        Trigger::Routes(_) => {}
        Trigger::Queue { name, .. } => {
            catalog::queues::check_name(name).map_err(anyhow::Error::msg)?
        }
        Trigger::Schedule { expression } => {
            catalog::schedules::parse(expression).map_err(anyhow::Error::msg)?;
        }
    }
    let dir = root.join("functions").join(name);
    if dir.exists() {
        bail!(
            "functions/{name} exists already: choose another name (or `cargo xtask remove {name}` first)"
        );
    }
    let root_manifest = read(&root.join("Cargo.toml"))?;
    let members = manifest::function_members(&root_manifest).map_err(anyhow::Error::msg)?;
    let mut functions = Vec::new();
    for member in workspace_members(&root_manifest)? {
        let text = read(&root.join(&member).join("Cargo.toml"))?;
        if package_name(&text).as_deref() == Some(name) {
            bail!(
                "the workspace has a crate called `{name}` already ({member}): choose another name"
            );
        }
        if members.contains(&member) {
            let file = format!("{member}/Cargo.toml");
            functions.extend(manifest::parse(&file, &text).map_err(anyhow::Error::msg)?);
        }
    }
    let cargo_toml = cargo_toml(name, spec);
    let file = format!("functions/{name}/Cargo.toml");
    let declared = manifest::parse(&file, &cargo_toml)
        .map_err(anyhow::Error::msg)?
        .context("the generated manifest declares a function")?;
    functions.push(declared);
    manifest::check_all(&functions).map_err(anyhow::Error::msg)?;
    let state = state_rs(name, spec.secrets);
    let mut files = vec![("Cargo.toml", cargo_toml)];
    match spec.trigger {
        Trigger::Routes(routes) => files.extend([
            ("src/main.rs", fill(templates::MAIN_RS, &[("name", name)])),
            ("src/lib.rs", lib_rs(name, routes, &state)),
            ("src/model.rs", templates::MODEL_RS.to_owned()),
            ("src/openapi.rs", openapi_rs(name, routes)),
        ]),
        Trigger::Queue { name: queue, .. } => files.extend([
            (
                "src/main.rs",
                fill(templates::QUEUE_MAIN_RS, &[("name", name)]),
            ),
            (
                "src/lib.rs",
                fill(
                    templates::QUEUE_LIB_RS,
                    &[("name", name), ("queue", queue), ("state", &state)],
                ),
            ),
            (
                "tests/batch.rs",
                fill(templates::QUEUE_TEST_RS, &[("name", name)]),
            ),
        ]),
        Trigger::Schedule { expression } => files.extend([
            (
                "src/main.rs",
                fill(templates::SCHEDULE_MAIN_RS, &[("name", name)]),
            ),
            (
                "src/lib.rs",
                fill(
                    templates::SCHEDULE_LIB_RS,
                    &[
                        ("name", name),
                        ("expression", expression),
                        ("state", &state),
                    ],
                ),
            ),
            (
                "tests/schedule.rs",
                fill(templates::SCHEDULE_TEST_RS, &[("name", name)]),
            ),
        ]),
    }
    Ok(Scaffold {
        name: name.to_owned(),
        dir,
        files,
    })
}

/// Writes the crate and enters it in the root manifest; on any error removes the crate and
/// puts the root manifest back.
pub fn write(root: &Path, scaffold: &Scaffold) -> Result<()> {
    let root_manifest = root.join("Cargo.toml");
    let original = read(&root_manifest)?;
    let result = (|| -> Result<()> {
        for (path, text) in &scaffold.files {
            let path = scaffold.dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let edited = add_member(&original, &format!("functions/{}", scaffold.name))?;
        std::fs::write(&root_manifest, edited)
            .with_context(|| format!("writing {}", root_manifest.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&scaffold.dir);
        let _ = std::fs::write(&root_manifest, &original);
    }
    result
}

/// Whether the crate of `name` can be removed: it is a function of the workspace and no other
/// member depends on it. Returns its directory.
pub fn removable(root: &Path, name: &str) -> Result<PathBuf> {
    let root_manifest = read(&root.join("Cargo.toml"))?;
    let member = format!("functions/{name}");
    let functions = manifest::function_members(&root_manifest).map_err(anyhow::Error::msg)?;
    if !functions.contains(&member) {
        bail!(
            "`{name}` is not a function of the workspace ({member} is not among the root \
             Cargo.toml's members)"
        );
    }
    let dir = root.join(&member);
    for other in workspace_members(&root_manifest)? {
        if other == member {
            continue;
        }
        let text = read(&root.join(&other).join("Cargo.toml"))?;
        if depends_on(&text, name) {
            bail!("{other} depends on `{name}`: remove that dependency first");
        }
    }
    Ok(dir)
}

/// Takes `functions/<name>` out of the root manifest's lists, then deletes the crate.
pub fn remove(root: &Path, name: &str, dir: &Path) -> Result<()> {
    let path = root.join("Cargo.toml");
    let edited = remove_member(&read(&path)?, &format!("functions/{name}"))?;
    std::fs::write(&path, edited).with_context(|| format!("writing {}", path.display()))?;
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// Runs the OpenAPI tests of `packages` with `UPDATE_EXPECT=1` (`expect-test`'s refresh), so
/// they rewrite the crates' fragments and the assembled `functions/openapi.json`.
pub fn refresh_openapi(root: &Path, packages: &[&str]) -> Result<()> {
    let mut args = vec!["--lib"];
    for package in packages {
        args.extend(["-p", package]);
    }
    args.push("openapi");
    cargo_test(root, &args, true, "writing the OpenAPI documents")
        .with_context(|| format!("the OpenAPI tests of {} failed", packages.join(", ")))
}

/// Compiles `package` and its tests, for a crate with no OpenAPI fragment to write: what proves
/// the scaffold builds.
pub fn compile_tests(root: &Path, package: &str) -> Result<()> {
    cargo_test(root, &["--no-run", "-p", package], false, "compiling it")
        .with_context(|| format!("{package} or its tests did not compile"))
}

/// `cargo test --quiet ARGS` in the workspace at `root` (with `UPDATE_EXPECT=1` when
/// `update_expect`). Cargo's output goes to stderr: stdout is the command's result (`--json`).
fn cargo_test(root: &Path, args: &[&str], update_expect: bool, what: &str) -> Result<()> {
    let mut cargo = emulator::cargo();
    cargo
        .args(["test", "--quiet"])
        .args(args)
        .current_dir(root)
        .stdout(std::io::stderr());
    let update = if update_expect {
        cargo.env("UPDATE_EXPECT", "1");
        "UPDATE_EXPECT=1 "
    } else {
        ""
    };
    progress::step(format!("{what} ({update}cargo test {})", args.join(" ")));
    let status = cargo.status().context("running cargo")?;
    if !status.success() {
        bail!("cargo test {} failed", args.join(" "));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn workspace_members(root_manifest: &str) -> Result<Vec<String>> {
    let doc: DocumentMut = root_manifest.parse().context("the root Cargo.toml")?;
    Ok(doc["workspace"]["members"]
        .as_array()
        .context("the root Cargo.toml has no [workspace] members")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

fn package_name(manifest: &str) -> Option<String> {
    let doc: DocumentMut = manifest.parse().ok()?;
    doc["package"]["name"].as_str().map(str::to_owned)
}

/// Whether a member's manifest has `name` among any of its dependency tables.
fn depends_on(manifest: &str, name: &str) -> bool {
    let Ok(doc) = manifest.parse::<DocumentMut>() else {
        return false;
    };
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .any(|table| doc.get(table).and_then(|t| t.get(name)).is_some())
}

/// `root_manifest` with `member` inserted after the last `functions/` entry of each list, in
/// the layout of its neighbour.
fn add_member(root_manifest: &str, member: &str) -> Result<String> {
    let mut doc: DocumentMut = root_manifest.parse().context("the root Cargo.toml")?;
    for list in MEMBER_LISTS {
        let Some(array) = doc["workspace"]
            .get_mut(list)
            .and_then(|item| item.as_array_mut())
        else {
            continue;
        };
        let at = array
            .iter()
            .enumerate()
            .filter(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("functions/")))
            .last()
            .map_or(array.len(), |(i, _)| i + 1);
        let mut value = Value::from(member);
        // The next entry's layout (the first one's prefix is often different), else the last's.
        if let Some(neighbour) = array.get(at).or_else(|| array.get(at.wrapping_sub(1))) {
            *value.decor_mut() = neighbour.decor().clone();
        }
        array.insert_formatted(at, value);
    }
    Ok(doc.to_string())
}

fn remove_member(root_manifest: &str, member: &str) -> Result<String> {
    let mut doc: DocumentMut = root_manifest.parse().context("the root Cargo.toml")?;
    for list in MEMBER_LISTS {
        if let Some(array) = doc["workspace"]
            .get_mut(list)
            .and_then(|item| item.as_array_mut())
        {
            array.retain(|v| v.as_str() != Some(member));
        }
    }
    Ok(doc.to_string())
}

/// The crate's files as templates (`xtask/templates/function/`), real files an editor shows
/// as what they become: `${key}` marks where [`fill`] puts a value, and nothing else in them
/// is special. `src/` and `dependencies.toml.in` are a route function's, `queue/` and
/// `schedule/` the other kinds'; `parts/` holds what is repeated per route or per grant, the
/// trigger declarations and the `State` every kind shares.
mod templates {
    pub const CARGO_TOML: &str = include_str!("../../templates/function/Cargo.toml.in");
    pub const DEPENDENCIES: &str = include_str!("../../templates/function/dependencies.toml.in");
    pub const MAIN_RS: &str = include_str!("../../templates/function/src/main.rs.in");
    pub const LIB_RS: &str = include_str!("../../templates/function/src/lib.rs.in");
    pub const MODEL_RS: &str = include_str!("../../templates/function/src/model.rs.in");
    pub const OPENAPI_RS: &str = include_str!("../../templates/function/src/openapi.rs.in");
    pub const ROUTE: &str = include_str!("../../templates/function/parts/route.toml.in");
    pub const GRANT: &str = include_str!("../../templates/function/parts/grant.toml.in");
    pub const INDEX_GRANT: &str =
        include_str!("../../templates/function/parts/index_grant.toml.in");
    pub const HANDLER: &str = include_str!("../../templates/function/parts/handler.rs.in");
    pub const STATE: &str = include_str!("../../templates/function/parts/state.rs.in");
    pub const QUEUE: &str = include_str!("../../templates/function/parts/queue.toml.in");
    pub const SCHEDULE: &str = include_str!("../../templates/function/parts/schedule.toml.in");

    // A queue worker: `SqsEvent` in, `SqsBatchResponse` out.
    pub const QUEUE_DEPENDENCIES: &str =
        include_str!("../../templates/function/queue/dependencies.toml.in");
    pub const QUEUE_MAIN_RS: &str = include_str!("../../templates/function/queue/src/main.rs.in");
    pub const QUEUE_LIB_RS: &str = include_str!("../../templates/function/queue/src/lib.rs.in");
    pub const QUEUE_TEST_RS: &str =
        include_str!("../../templates/function/queue/tests/batch.rs.in");

    // A scheduled function: an EventBridge Scheduled Event in, what the run did out.
    pub const SCHEDULE_DEPENDENCIES: &str =
        include_str!("../../templates/function/schedule/dependencies.toml.in");
    pub const SCHEDULE_MAIN_RS: &str =
        include_str!("../../templates/function/schedule/src/main.rs.in");
    pub const SCHEDULE_LIB_RS: &str =
        include_str!("../../templates/function/schedule/src/lib.rs.in");
    pub const SCHEDULE_TEST_RS: &str =
        include_str!("../../templates/function/schedule/tests/schedule.rs.in");
}

/// `template` with each `${key}` replaced by the value of `key` in `values`; values are not
/// read again, so a value may hold `${`. The templates are part of this program, so a
/// placeholder without a value, or a value no placeholder asks for, is a bug here: it panics,
/// and the tests that render every template catch it.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("an unclosed `${{` in a template: {after:.40}"));
        let key = &after[..end];
        let i = values
            .iter()
            .position(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("no value for the template's `${{{key}}}`"));
        used[i] = true;
        out.push_str(values[i].1);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|used| !used) {
        panic!("the template has no `${{{}}}`", values[i].0);
    }
    out
}

/// A template repeated per item, without the newline that ends its file (the caller joins
/// the copies).
fn part(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = fill(template, values);
    if text.ends_with('\n') {
        text.pop();
    }
    text
}

/// The manifest: package, declaration (secrets, the trigger: routes with the API key, the
/// queue or the schedule; grants from `--table`), and the dependencies the handlers use.
fn cargo_toml(name: &str, spec: &Spec<'_>) -> String {
    let Spec {
        trigger,
        tables,
        secrets,
    } = *spec;
    let secrets = match secrets {
        [] => String::new(),
        names => {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!("secrets = [{}]\n", quoted.join(", "))
        }
    };
    let (described, triggers, dependencies) = match trigger {
        Trigger::Routes(routes) => {
            let described: Vec<String> = routes
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            let declared: String = routes
                .iter()
                .map(|route| {
                    fill(
                        templates::ROUTE,
                        &[("method", &route.method), ("path", &route.path)],
                    )
                })
                .collect();
            (described.join(", "), declared, templates::DEPENDENCIES)
        }
        Trigger::Queue {
            name: queue,
            batch_size,
        } => {
            let batch_size = batch_size.map_or(String::new(), |n| format!("batch_size = {n}\n"));
            let declared = fill(
                templates::QUEUE,
                &[("queue", queue), ("batch_size", &batch_size)],
            );
            (
                format!("the `{queue}` queue"),
                declared,
                templates::QUEUE_DEPENDENCIES,
            )
        }
        Trigger::Schedule { expression } => (
            format!("the schedule {expression}"),
            fill(templates::SCHEDULE, &[("expression", expression)]),
            templates::SCHEDULE_DEPENDENCIES,
        ),
    };
    let mut sids = BTreeSet::new();
    let mut grants = String::new();
    for grant in tables {
        let (verb, actions) = match grant.access {
            Access::Read => ("Read", "\"dynamodb:GetItem\", \"dynamodb:Query\""),
            Access::Write => (
                "ReadAndWrite",
                "\"dynamodb:GetItem\", \"dynamodb:Query\", \"dynamodb:PutItem\", \"dynamodb:UpdateItem\", \"dynamodb:DeleteItem\"",
            ),
        };
        let table = camel(&grant.table);
        let sid = format!("{verb}{table}Items");
        if sids.insert(sid.clone()) {
            grants += &fill(
                templates::GRANT,
                &[("sid", &sid), ("table", &grant.table), ("actions", actions)],
            );
        }
        if let Some(index) = &grant.index {
            let sid = format!("Query{table}{}", camel(index));
            if sids.insert(sid.clone()) {
                grants += &fill(
                    templates::INDEX_GRANT,
                    &[("sid", &sid), ("table", &grant.table), ("index", index)],
                );
            }
        }
    }
    fill(
        templates::CARGO_TOML,
        &[
            ("name", name),
            ("described", &described),
            ("secrets", &secrets),
            ("triggers", &triggers),
            ("grants", &grants),
            ("dependencies", dependencies),
        ],
    )
}

/// `by-kind` -> `ByKind`, `users` -> `Users`.
fn camel(text: &str) -> String {
    text.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(capitalise)
        .collect()
}

/// The `State` every kind's library opens with: the configuration, the DynamoDB client for
/// the granted tables, and the secrets the manifest declares.
fn state_rs(name: &str, secrets: &[String]) -> String {
    // The state names the secrets the manifest declares (`check_function` holds them equal).
    let secrets = if secrets.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "    /// The secrets its manifest declares (read through `clients.secrets` once\n    \
             /// `service-common`'s `secrets` feature is on).\n    \
             const SECRETS: &'static [&'static str] = &[{}];\n\n",
            quoted.join(", ")
        )
    };
    part(templates::STATE, &[("name", name), ("secrets", &secrets)])
}

/// The library of a route function: `State`, one `Op` variant, `ROUTES` entry, dispatch arm
/// and placeholder handler per route, and a test of the first route.
fn lib_rs(name: &str, routes: &[RouteSpec], state: &str) -> String {
    let lines = |line: &dyn Fn(&RouteSpec) -> String| -> String {
        routes.iter().map(line).collect::<Vec<_>>().join("\n")
    };
    let variants = lines(&|route| format!("    {},", route.variant()));
    let table = lines(&|route| {
        let (method, path, variant) = (&route.method, &route.path, route.variant());
        format!("    Route::new(Method::{method}, \"{path}\", Op::{variant}),")
    });
    let arms = lines(&|route| format!("        Op::{} => {}(),", route.variant(), route.handler()));
    let handlers: Vec<String> = routes
        .iter()
        .map(|route| {
            let params: String = route
                .parameters()
                .iter()
                .map(|p| {
                    format!(
                        "    params((\"{p}\" = String, Path, description = \"The `{p}` path parameter\")),\n"
                    )
                })
                .collect();
            part(
                templates::HANDLER,
                &[
                    ("method", &route.method),
                    ("path", &route.path),
                    ("lower", &route.method.to_ascii_lowercase()),
                    ("name", name),
                    ("variant", &route.variant()),
                    ("params", &params),
                    ("handler", &route.handler()),
                ],
            )
        })
        .collect();
    let first = &routes[0];
    fill(
        templates::LIB_RS,
        &[
            ("name", name),
            ("state", state),
            ("variants", &variants),
            ("routes", &table),
            ("arms", &arms),
            ("handlers", &handlers.join("\n\n")),
            ("method", &first.method),
            ("path", &first.path),
        ],
    )
}

fn openapi_rs(name: &str, routes: &[RouteSpec]) -> String {
    let paths: Vec<String> = routes
        .iter()
        .map(|route| format!("crate::{}", route.handler()))
        .collect();
    fill(
        templates::OPENAPI_RS,
        &[("name", name), ("paths", &paths.join(", "))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_or_say_the_form() {
        assert_eq!(
            TableGrant::parse("users:read:by-kind").unwrap(),
            TableGrant {
                table: "users".into(),
                access: Access::Read,
                index: Some("by-kind".into())
            }
        );
        assert_eq!(TableGrant::parse("users").unwrap().access, Access::Read);
        assert!(TableGrant::parse("users:all").unwrap_err().contains("read"));
        let route = RouteSpec::parse("get /items/{id}").unwrap();
        assert_eq!(route.variant(), "GetItemsId");
        assert_eq!(route.handler(), "get_items_id");
        assert_eq!(route.parameters(), ["id"]);
        assert!(
            RouteSpec::parse("/items")
                .unwrap_err()
                .contains("METHOD /path")
        );
    }

    /// The scaffold's output for one function with every feature (two routes, a path
    /// parameter, a read and a write grant, an index, a secret), pinned: the templates may move, the
    /// crate they write may not change by accident (`expect-test`: `UPDATE_EXPECT=1` rewrites
    /// the file after a change made on purpose).
    #[test]
    fn output_is_pinned() {
        let root = deploy_files::workspace_root();
        let routes = ["GET /items", "PUT /items/{id}"].map(|r| RouteSpec::parse(r).unwrap());
        let tables = ["users:write:by-kind", "sessions"].map(|t| TableGrant::parse(t).unwrap());
        let secrets = ["payments-key".to_owned()];
        let spec = Spec {
            trigger: Trigger::Routes(&routes),
            tables: &tables,
            secrets: &secrets,
        };
        expect_test::expect_file!["../../templates/items.expected"]
            .assert_eq(&rendered(&root, "items", &spec));
    }

    /// Every file of the planned crate, each after a `==> path <==` line.
    fn rendered(root: &Path, name: &str, spec: &Spec<'_>) -> String {
        let scaffold = plan(root, name, spec).unwrap();
        scaffold
            .files()
            .iter()
            .zip(&scaffold.files)
            .map(|(path, (_, text))| format!("==> {path} <==\n{text}"))
            .collect()
    }

    /// A queue worker and a scheduled job (with a grant and a secret, so the shared `State`
    /// is rendered in full), pinned the same way.
    #[test]
    fn queue_and_schedule_outputs_are_pinned() {
        let root = deploy_files::workspace_root();
        let tables = [TableGrant::parse("users:read").unwrap()];
        let secrets = ["payments-key".to_owned()];
        let spec = |trigger| Spec {
            trigger,
            tables: &tables,
            secrets: &secrets,
        };
        let queue = Trigger::Queue {
            name: "jobs",
            batch_size: Some(5),
        };
        expect_test::expect_file!["../../templates/jobs.expected"].assert_eq(&rendered(
            &root,
            "jobs",
            &spec(queue),
        ));
        let schedule = Trigger::Schedule {
            expression: "cron(0 3 * * ? *)",
        };
        expect_test::expect_file!["../../templates/nightly.expected"].assert_eq(&rendered(
            &root,
            "nightly",
            &spec(schedule),
        ));
    }

    /// A queue or a schedule the catalog refuses is refused before anything is written, in
    /// the catalog's words.
    #[test]
    fn queues_and_schedules_are_checked_by_the_catalog() {
        let root = deploy_files::workspace_root();
        let e = |trigger| {
            let spec = Spec {
                trigger,
                tables: &[],
                secrets: &[],
            };
            plan(&root, "jobs", &spec)
                .err()
                .expect("refused")
                .to_string()
        };
        let queue = |name| Trigger::Queue {
            name,
            batch_size: None,
        };
        assert!(e(queue("Jobs")).contains("queue `Jobs`: use 1-40 characters"));
        let taken = catalog::consumer("session-sweeps").unwrap().name;
        assert!(e(queue("session-sweeps")).contains(&format!(
            "queue `session-sweeps` is consumed by both `{taken}` and `jobs`"
        )));
        let big = Trigger::Queue {
            name: "jobs",
            batch_size: Some(100),
        };
        assert!(e(big).contains("needs `batching_window_seconds`"));
        let schedule = |expression| Trigger::Schedule { expression };
        assert!(e(schedule("rate(1 days)")).contains("schedule expression `rate(1 days)`"));
        assert!(e(schedule("every day")).contains("must be `rate(...)` or `cron(...)`"));
        let quoted = e(schedule("rate(5 minutes)\" x = \""));
        assert!(
            quoted.contains("must be `rate(...)` or `cron(...)`"),
            "{quoted}"
        );
        let spec = Spec {
            trigger: queue("jobs"),
            tables: &[],
            secrets: &[],
        };
        let scaffold = plan(&root, "jobs", &spec).unwrap();
        assert!(!scaffold.dir.exists(), "planning writes nothing");
        assert!(
            scaffold
                .files()
                .contains(&"functions/jobs/tests/batch.rs".to_owned())
        );
    }

    #[test]
    fn fill_puts_each_value_where_its_key_is() {
        assert_eq!(
            fill(
                "fn ${name}() { ${a}${a} }",
                &[("name", "f"), ("a", "${name}")]
            ),
            "fn f() { ${name}${name} }"
        );
        assert_eq!(fill("$x {y} }", &[]), "$x {y} }");
        let unused = std::panic::catch_unwind(|| fill("a", &[("name", "f")]));
        assert!(unused.is_err(), "a value without a placeholder is refused");
        let missing = std::panic::catch_unwind(|| fill("${name}", &[]));
        assert!(missing.is_err(), "a placeholder without a value is refused");
    }

    #[test]
    fn members_keep_their_layout() {
        let root = "[workspace]\n# the crates\nmembers = [\n    \"functions/a\",\n    \"infra\",\n]\ndefault-members = [\"functions/a\", \"infra\"]\n";
        let added = add_member(root, "functions/items").unwrap();
        assert_eq!(
            added,
            "[workspace]\n# the crates\nmembers = [\n    \"functions/a\",\n    \"functions/items\",\n    \"infra\",\n]\ndefault-members = [\"functions/a\", \"functions/items\", \"infra\"]\n"
        );
        assert_eq!(remove_member(&added, "functions/items").unwrap(), root);
    }

    #[test]
    fn plans_are_checked_by_the_catalog_against_the_workspace() {
        let root = deploy_files::workspace_root();
        let route = |r: &str| vec![RouteSpec::parse(r).unwrap()];
        let items = route("GET /items");
        let e = |name, routes: &[RouteSpec], tables: &[TableGrant]| {
            let spec = Spec {
                trigger: Trigger::Routes(routes),
                tables,
                secrets: &[],
            };
            plan(&root, name, &spec).err().expect("refused").to_string()
        };
        assert!(e("users", &items, &[]).contains("exists already"));
        assert!(e("infra", &items, &[]).contains("a crate called `infra`"));
        assert!(e("Items", &items, &[]).contains("1-32 characters"));
        assert!(e("items", &route("FETCH /items"), &[]).contains("`method` must be one of"));
        assert!(e("items", &route("GET items/"), &[]).contains("`path` must be"));
        assert!(e("items", &route("GET /users"), &[]).contains("declared by both `users`"));
        let unknown = TableGrant::parse("orders").unwrap();
        assert!(e("items", &items, &[unknown]).contains("unknown table `orders`"));
        let bad_secret = Spec {
            trigger: Trigger::Routes(&items),
            tables: &[],
            secrets: &["Payments_Key".to_owned()],
        };
        let refused = plan(&root, "items", &bad_secret).err().expect("refused");
        assert!(
            refused
                .to_string()
                .contains("secret `Payments_Key`: use 1-64")
        );
        let tables = [TableGrant::parse("users:write:by-kind").unwrap()];
        let spec = Spec {
            trigger: Trigger::Routes(&items),
            tables: &tables,
            secrets: &[],
        };
        let scaffold = plan(&root, "items", &spec).unwrap();
        assert!(!scaffold.dir.exists(), "planning writes nothing");
        assert_eq!(scaffold.files()[0], "functions/items/Cargo.toml");
    }
}
