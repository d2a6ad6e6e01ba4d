//! Reading and checking the declarations: the workspace's manifests at run time
//! ([`read_workspace`], behind `FUNCTIONS`), and the TOML text `cargo xtask new` is about to
//! write, checked by the same rules before anything is written.

use crate::{queues, schedules, secrets, tables};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The parts of a `Cargo.toml` the catalog reads; any other key is Cargo's business.
#[derive(Deserialize)]
struct Manifest {
    package: Package,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    description: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Default, Deserialize)]
struct Metadata {
    function: Option<Declaration>,
}

/// `[package.metadata.function]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Declaration {
    description: Option<String>,
    memory_mb: u32,
    timeout_seconds: u32,
    #[serde(default)]
    routes: Vec<RouteDecl>,
    #[serde(default)]
    grants: Vec<GrantDecl>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    rotates: Vec<String>,
    #[serde(default)]
    queues: Vec<QueueDecl>,
    #[serde(default)]
    schedules: Vec<ScheduleDecl>,
    #[serde(default)]
    sends: Vec<String>,
}

/// `[[package.metadata.function.queues]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueDecl {
    name: String,
    batch_size: Option<u32>,
    batching_window_seconds: Option<u32>,
    max_receives: Option<u32>,
    example: Option<toml::Table>,
}

/// `[[package.metadata.function.schedules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleDecl {
    name: Option<String>,
    expression: String,
    input: Option<toml::Table>,
}

/// `[[package.metadata.function.routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteDecl {
    method: String,
    path: String,
    api_key: ApiKeyDecl,
    #[serde(default)]
    query: Vec<String>,
    #[serde(default)]
    cached: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ApiKeyDecl {
    Required,
    Environment,
}

/// `[[package.metadata.function.grants]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantDecl {
    sid: String,
    why: String,
    table: Option<String>,
    tables: Option<Vec<String>>,
    index: Option<String>,
    actions: Vec<String>,
    only_attributes: Option<Vec<String>>,
    #[serde(default)]
    returning_nothing: bool,
    except_keys: Option<Vec<String>>,
}

/// One checked declaration, owning its text until [`Function::into_static`].
#[derive(Debug)]
pub struct Function {
    name: String,
    description: String,
    memory_mb: u32,
    timeout_seconds: u32,
    routes: Vec<RouteDecl>,
    grants: Vec<Grant>,
    secrets: Vec<String>,
    rotates: Vec<String>,
    queues: Vec<Queue>,
    schedules: Vec<Schedule>,
    sends: Vec<String>,
}

/// A checked queue, defaults filled in.
#[derive(Debug)]
struct Queue {
    name: String,
    batch_size: u32,
    batching_window_seconds: u32,
    max_receives: u32,
    example: String,
}

/// A checked schedule: its name chosen, its input as JSON text.
#[derive(Debug)]
struct Schedule {
    name: String,
    expression: String,
    input: String,
}

/// A checked grant: `table`/`tables` folded into one list.
#[derive(Debug)]
struct Grant {
    sid: String,
    tables: Vec<String>,
    index: Option<String>,
    actions: Vec<String>,
    only_attributes: Vec<String>,
    returning_nothing: bool,
    except_keys: Vec<String>,
}

/// Methods a function may declare. `OPTIONS` and `ANY` are not among them: infra adds the
/// CORS preflights and the catch-all that answers 405 for every path itself.
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

/// The workspace members under `functions/`, in the order of the root manifest's `members`
/// (which is the order functions are deployed and listed in).
pub fn function_members(root_manifest: &str) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Root {
        workspace: Workspace,
    }
    #[derive(Deserialize)]
    struct Workspace {
        members: Vec<String>,
    }
    let root: Root = toml::from_str(root_manifest).map_err(|e| e.to_string())?;
    let mut members = Vec::new();
    for member in root.workspace.members {
        if member.contains(['*', '?', '[']) {
            return Err(format!(
                "workspace member `{member}` is a glob: list each crate, so the catalog knows \
                 exactly which manifests to read (and to watch)"
            ));
        }
        if member.starts_with("functions/") {
            members.push(member);
        }
    }
    Ok(members)
}

/// `[workspace.metadata.secrets.<name>]` of the root manifest: the properties of the declared
/// secret `name`, in one place whichever functions declare it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretDecl {
    /// How `cargo xtask` makes a value (`secrets::Generate`); none: a person sets it.
    generate: Option<String>,
    /// Rotate automatically every this many days (generated secrets only).
    rotation_days: Option<u32>,
}

/// A declared secret's checked properties.
#[derive(Debug, PartialEq, Eq)]
pub struct SecretProperties {
    pub name: String,
    pub generate: Option<secrets::Generate>,
    pub rotation_days: Option<u32>,
}

/// The root manifest's `[workspace.metadata.secrets]`, checked against the functions'
/// declarations: a block for a secret no function declares, an unknown key or an unknown
/// `generate` kind is refused (a typo would otherwise leave a secret silently unset).
pub fn secret_properties(
    root_manifest: &str,
    functions: &[Function],
) -> Result<Vec<SecretProperties>, String> {
    #[derive(Deserialize)]
    struct Root {
        workspace: Workspace,
    }
    #[derive(Deserialize)]
    struct Workspace {
        #[serde(default)]
        metadata: WorkspaceMetadata,
    }
    #[derive(Default, Deserialize)]
    struct WorkspaceMetadata {
        #[serde(default)]
        secrets: std::collections::BTreeMap<String, SecretDecl>,
    }
    let root: Root = toml::from_str(root_manifest).map_err(|e| e.to_string())?;
    let declared: BTreeSet<&str> = functions
        .iter()
        .flat_map(|f| f.secrets.iter().map(String::as_str))
        .collect();
    root.workspace
        .metadata
        .secrets
        .into_iter()
        .map(|(name, decl)| {
            if !declared.contains(name.as_str()) {
                return Err(format!(
                    "[workspace.metadata.secrets.{name}]: no function declares a secret \
                     `{name}` (declared: {})",
                    declared.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            let generate = decl
                .generate
                .as_deref()
                .map(secrets::Generate::from_kind)
                .transpose()
                .map_err(|e| format!("[workspace.metadata.secrets.{name}]: {e}"))?;
            let rotation_days = decl
                .rotation_days
                .map(|days| check_rotation(&name, generate, days, functions))
                .transpose()
                .map_err(|e| format!("[workspace.metadata.secrets.{name}]: {e}"))?;
            Ok(SecretProperties {
                name,
                generate,
                rotation_days,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .and_then(|properties| check_rotated(properties, functions))
}

/// `rotation_days = N`: Secrets Manager's range, on a secret a function can compute the next
/// value of (a generated one: no function can invent a person's payment key).
fn check_rotation(
    name: &str,
    generate: Option<secrets::Generate>,
    days: u32,
    functions: &[Function],
) -> Result<u32, String> {
    if !secrets::ROTATION_DAYS.contains(&days) {
        return Err(format!(
            "`rotation_days` must be {}..={} (Secrets Manager's range), found {days}",
            secrets::ROTATION_DAYS.start(),
            secrets::ROTATION_DAYS.end()
        ));
    }
    if generate.is_none() {
        return Err(
            "`rotation_days` needs `generate`: a rotation function computes the next value, \
             so only a generated secret rotates (rotate a secret a person sets with \
             `cargo xtask secret set`)"
                .into(),
        );
    }
    let rotators: Vec<&str> = functions
        .iter()
        .filter(|f| f.rotates.iter().any(|r| r == name))
        .map(|f| f.name.as_str())
        .collect();
    match rotators.as_slice() {
        [_] => Ok(days),
        [] => Err(format!(
            "no function rotates it: add `rotates = [\"{name}\"]` to the rotation function's \
             declaration"
        )),
        many => Err(format!(
            "rotated by {}: one function rotates a secret",
            many.join(", ")
        )),
    }
}

/// Every secret a function `rotates` has `rotation_days` (else nothing would ever invoke it).
fn check_rotated(
    properties: Vec<SecretProperties>,
    functions: &[Function],
) -> Result<Vec<SecretProperties>, String> {
    for f in functions {
        for name in &f.rotates {
            let rotated = properties
                .iter()
                .any(|p| &p.name == name && p.rotation_days.is_some());
            if !rotated {
                return Err(format!(
                    "function `{}` rotates `{name}`, which has no `rotation_days` in \
                     [workspace.metadata.secrets.{name}]",
                    f.name
                ));
            }
        }
    }
    Ok(properties)
}

impl SecretProperties {
    /// The secret as [`crate::GENERATED`] lists it, if its value is generated.
    pub fn generated(&self) -> Option<secrets::Generated> {
        self.generate.map(|generate| secrets::Generated {
            name: leak(self.name.clone()),
            generate,
            rotation_days: self.rotation_days,
        })
    }
}

/// Reads the workspace at `root`: the manifest of every member under `functions/`, in
/// `members` order, each declaration checked, then the checks across functions and the root
/// manifest's secret properties. An error names the manifest and what is wrong.
pub fn read_workspace(root: &Path) -> Result<(Vec<Function>, Vec<SecretProperties>), String> {
    let read =
        |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let root_manifest = root.join("Cargo.toml");
    let root_text = read(&root_manifest)?;
    let members =
        function_members(&root_text).map_err(|e| format!("{}: {e}", root_manifest.display()))?;
    let mut functions = Vec::new();
    for member in members {
        let path = root.join(&member).join("Cargo.toml");
        functions.extend(parse(&format!("{member}/Cargo.toml"), &read(&path)?)?);
    }
    check_all(&functions)?;
    let properties = secret_properties(&root_text, &functions)
        .map_err(|e| format!("{}: {e}", root_manifest.display()))?;
    Ok((functions, properties))
}

/// Reads one member's manifest: `None` when it declares no function (a library such as
/// `functions/common`). `file` names the manifest in errors.
pub fn parse(file: &str, text: &str) -> Result<Option<Function>, String> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let package = manifest.package;
    let Some(declaration) = package.metadata.function else {
        return Ok(None);
    };
    check(&package.name, package.description, declaration)
        .map(Some)
        .map_err(|e| format!("{file}: [package.metadata.function]: {e}"))
}

fn check(
    name: &str,
    package_description: Option<String>,
    d: Declaration,
) -> Result<Function, String> {
    let name_ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(format!(
            "the package name `{name}` is also the function's AWS name suffix, Terraform name \
             and binary: use 1-32 characters of a-z, 0-9 and '_', starting with a letter"
        ));
    }
    let description = d.description.or(package_description).unwrap_or_default();
    if description.is_empty() || description.len() > 256 {
        return Err(format!(
            "`description` (or the package's) must be 1-256 characters (Lambda's limit), \
             found {}",
            description.len()
        ));
    }
    if !(128..=10_240).contains(&d.memory_mb) {
        return Err(format!(
            "`memory_mb` must be 128..=10240, found {}",
            d.memory_mb
        ));
    }
    if !(1..=900).contains(&d.timeout_seconds) {
        return Err(format!(
            "`timeout_seconds` must be 1..=900, found {}",
            d.timeout_seconds
        ));
    }
    if d.routes.is_empty() && d.rotates.is_empty() && d.queues.is_empty() && d.schedules.is_empty()
    {
        return Err(
            "nothing invokes it: declare `[[package.metadata.function.routes]]`, \
             `[[package.metadata.function.queues]]`, `[[package.metadata.function.schedules]]` \
             or the secrets it `rotates`"
                .into(),
        );
    }
    let mut seen = BTreeSet::new();
    for route in &d.routes {
        check_route(route)?;
        if !seen.insert((route.method.as_str(), route.path.as_str())) {
            return Err(format!(
                "route {} {} is declared twice",
                route.method, route.path
            ));
        }
    }
    let mut sids = BTreeSet::new();
    let mut grants = Vec::new();
    for grant in d.grants {
        if !sids.insert(grant.sid.clone()) {
            return Err(format!("grant sid `{}` is declared twice", grant.sid));
        }
        let sid = grant.sid.clone();
        grants.push(check_grant(grant).map_err(|e| format!("grant `{sid}`: {e}"))?);
    }
    for (key, list) in [("secrets", &d.secrets), ("rotates", &d.rotates)] {
        let mut seen = BTreeSet::new();
        for secret in list {
            secrets::check_name(secret)?;
            if !seen.insert(secret) {
                return Err(format!("secret `{secret}` is in `{key}` twice"));
            }
        }
    }
    let queues = d
        .queues
        .into_iter()
        .map(check_queue)
        .collect::<Result<Vec<_>, _>>()?;
    let schedules = d
        .schedules
        .into_iter()
        .map(|s| check_schedule(name, s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = BTreeSet::new();
    for queue in &d.sends {
        queues::check_name(queue)?;
        if !seen.insert(queue) {
            return Err(format!("queue `{queue}` is in `sends` twice"));
        }
    }
    Ok(Function {
        name: name.to_owned(),
        description,
        memory_mb: d.memory_mb,
        timeout_seconds: d.timeout_seconds,
        routes: d.routes,
        grants,
        secrets: d.secrets,
        rotates: d.rotates,
        queues,
        schedules,
        sends: d.sends,
    })
}

fn check_queue(q: QueueDecl) -> Result<Queue, String> {
    queues::check_name(&q.name)?;
    let at = format!("queue `{}`", q.name);
    let in_range = |key: &str, value: u32, range: std::ops::RangeInclusive<u32>| {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{at}: `{key}` must be {}..={}, found {value}",
                range.start(),
                range.end()
            ))
        }
    };
    let batch_size = in_range(
        "batch_size",
        q.batch_size.unwrap_or(queues::BATCH_SIZE_WITHOUT_WINDOW),
        queues::BATCH_SIZE,
    )?;
    let batching_window_seconds = in_range(
        "batching_window_seconds",
        q.batching_window_seconds.unwrap_or(0),
        queues::BATCHING_WINDOW_SECONDS,
    )?;
    let max_receives = in_range(
        "max_receives",
        q.max_receives.unwrap_or(queues::DEFAULT_MAX_RECEIVES),
        queues::MAX_RECEIVES,
    )?;
    if batch_size > queues::BATCH_SIZE_WITHOUT_WINDOW && batching_window_seconds == 0 {
        return Err(format!(
            "{at}: a `batch_size` over {} needs `batching_window_seconds` of at least 1 \
             (Lambda's rule)",
            queues::BATCH_SIZE_WITHOUT_WINDOW
        ));
    }
    let example = serde_json::to_string(&q.example.unwrap_or_default())
        .map_err(|e| format!("{at}: `example`: {e}"))?;
    Ok(Queue {
        name: q.name,
        batch_size,
        batching_window_seconds,
        max_receives,
        example,
    })
}

fn check_schedule(function: &str, s: ScheduleDecl) -> Result<Schedule, String> {
    let name = s.name.unwrap_or_else(|| schedules::default_name(function));
    schedules::check_name(&name)?;
    schedules::parse(&s.expression).map_err(|e| format!("schedule `{name}`: {e}"))?;
    let input = serde_json::to_string(&s.input.unwrap_or_default())
        .map_err(|e| format!("schedule `{name}`: `input`: {e}"))?;
    Ok(Schedule {
        name,
        expression: s.expression,
        input,
    })
}

fn check_route(route: &RouteDecl) -> Result<(), String> {
    let at = format!("route {} {}", route.method, route.path);
    if !METHODS.contains(&route.method.as_str()) {
        return Err(format!(
            "{at}: `method` must be one of {}",
            METHODS.join(", ")
        ));
    }
    let segments: Vec<&str> = route.path.split('/').skip(1).collect();
    let path_ok = route.path.starts_with('/')
        && segments.iter().all(|segment| {
            let parameter = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            let word = parameter.unwrap_or(segment);
            !word.is_empty()
                && word.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || c == '_'
                        || (parameter.is_none() && matches!(c, '-' | '.'))
                })
        });
    if !path_ok {
        return Err(format!(
            "{at}: `path` must be `/` followed by segments of a-z, A-Z, 0-9, '_', '-', '.' or a \
             `{{parameter}}`, without a trailing slash"
        ));
    }
    let mut query = BTreeSet::new();
    for name in &route.query {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{at}: query parameter `{name}` must be a-z, A-Z, 0-9 or '_'"
            ));
        }
        if !query.insert(name) {
            return Err(format!("{at}: query parameter `{name}` is listed twice"));
        }
    }
    if route.cached && route.method != "GET" {
        return Err(format!("{at}: only a GET can be `cached`"));
    }
    Ok(())
}

fn check_grant(grant: GrantDecl) -> Result<Grant, String> {
    if grant.sid.is_empty() || !grant.sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("`sid` must be a-z, A-Z and 0-9 (IAM's rule for statement ids)".into());
    }
    if grant.why.trim().is_empty() {
        return Err("`why` must say what the function needs this for".into());
    }
    let tables = match (grant.table, grant.tables) {
        (Some(table), None) => vec![table],
        (None, Some(tables)) if !tables.is_empty() => tables,
        _ => return Err("give exactly one of `table = \"...\"` or `tables = [...]`".into()),
    };
    for table in &tables {
        let Some(spec) = tables::find(table) else {
            let known: Vec<&str> = tables::ALL.iter().map(|t| t.logical).collect();
            return Err(format!(
                "unknown table `{table}` (the service has {})",
                known.join(", ")
            ));
        };
        if let Some(index) = &grant.index {
            if tables.len() > 1 {
                return Err("`index` needs a single `table`".into());
            }
            if !spec.indexes.iter().any(|i| i.name == index) {
                return Err(format!("table `{table}` has no index `{index}`"));
            }
        }
    }
    let action_ok = |a: &String| {
        a.strip_prefix("dynamodb:")
            .is_some_and(|op| !op.is_empty() && op.chars().all(|c| c.is_ascii_alphabetic()))
    };
    if grant.actions.is_empty() || !grant.actions.iter().all(action_ok) {
        return Err(
            "`actions` must list DynamoDB actions by name (`dynamodb:GetItem`), no wildcards"
                .into(),
        );
    }
    if grant.only_attributes.as_ref().is_some_and(Vec::is_empty) {
        return Err("`only_attributes` must name at least one attribute (or be left out)".into());
    }
    if grant
        .except_keys
        .as_ref()
        .is_some_and(|keys| keys.is_empty() || keys.iter().any(|k| k.is_empty() || k == "*"))
    {
        return Err(
            "`except_keys` must list key patterns such as \"login#*\" (or be left out)".into(),
        );
    }
    Ok(Grant {
        sid: grant.sid,
        tables,
        index: grant.index,
        actions: grant.actions,
        only_attributes: grant.only_attributes.unwrap_or_default(),
        returning_nothing: grant.returning_nothing,
        except_keys: grant.except_keys.unwrap_or_default(),
    })
}

/// Checks across functions: a route (and, for infra's per-path preflight and fallback
/// routes, a path) belongs to one function only; a queue has one consumer and is sent to only
/// if declared; a schedule name is used once.
pub fn check_all(functions: &[Function]) -> Result<(), String> {
    let mut owner = std::collections::BTreeMap::new();
    let mut names = BTreeSet::new();
    let mut consumers = std::collections::BTreeMap::new();
    let mut schedule_owner = std::collections::BTreeMap::new();
    for f in functions {
        for q in &f.queues {
            if let Some(other) = consumers.insert(q.name.as_str(), &f.name) {
                return Err(format!(
                    "queue `{}` is consumed by both `{other}` and `{}`: a queue has one \
                     consumer (a second would take half of its messages)",
                    q.name, f.name
                ));
            }
        }
        for s in &f.schedules {
            if let Some(other) = schedule_owner.insert(s.name.as_str(), &f.name) {
                return Err(format!(
                    "schedule `{}` is declared by `{other}` and `{}`: give each a unique \
                     `name`",
                    s.name, f.name
                ));
            }
        }
    }
    for f in functions {
        for queue in &f.sends {
            if !consumers.contains_key(queue.as_str()) {
                return Err(format!(
                    "function `{}` sends to queue `{queue}`, which no function consumes \
                     (declare it in the consumer's `[[package.metadata.function.queues]]`)",
                    f.name
                ));
            }
        }
    }
    for f in functions {
        if !names.insert(&f.name) {
            return Err(format!("two function crates are called `{}`", f.name));
        }
        let paths: BTreeSet<&str> = f.routes.iter().map(|r| r.path.as_str()).collect();
        for path in paths {
            if let Some(other) = owner.insert(path, &f.name) {
                return Err(format!(
                    "path {path} is declared by both `{other}` and `{}`: a path belongs to one \
                     function (API Gateway sends its CORS preflights and unknown methods there)",
                    f.name
                ));
            }
        }
    }
    Ok(())
}

/// Text kept for the rest of the process: the catalog is read once, and every reader holds
/// `&'static` parts of it, as it did when the declarations were compiled in.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn leak_all(texts: Vec<String>) -> &'static [&'static str] {
    leak_slice(texts.into_iter().map(leak).collect())
}

fn leak_slice<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

impl Function {
    /// The declaration as the library's [`crate::Function`].
    pub fn into_static(self) -> crate::Function {
        let routes = self.routes.into_iter().map(|r| crate::Route {
            method: leak(r.method),
            path: leak(r.path),
            api_key: match r.api_key {
                ApiKeyDecl::Required => crate::ApiKey::Required,
                ApiKeyDecl::Environment => crate::ApiKey::Environment,
            },
            query: leak_all(r.query),
            cached: r.cached,
        });
        let grants = self.grants.into_iter().map(|g| crate::Grant {
            sid: leak(g.sid),
            tables: leak_all(g.tables),
            index: g.index.map(leak),
            actions: leak_all(g.actions),
            only_attributes: leak_all(g.only_attributes),
            returning_nothing: g.returning_nothing,
            except_keys: leak_all(g.except_keys),
        });
        let queues = self.queues.into_iter().map(|q| crate::Queue {
            name: leak(q.name),
            batch_size: q.batch_size,
            batching_window_seconds: q.batching_window_seconds,
            max_receives: q.max_receives,
            example: leak(q.example),
        });
        let schedules = self.schedules.into_iter().map(|s| crate::Schedule {
            name: leak(s.name),
            expression: leak(s.expression),
            input: leak(s.input),
        });
        crate::Function {
            name: leak(self.name),
            description: leak(self.description),
            memory_mb: self.memory_mb,
            timeout_seconds: self.timeout_seconds,
            routes: leak_slice(routes.collect()),
            grants: leak_slice(grants.collect()),
            secrets: leak_all(self.secrets),
            rotates: leak_all(self.rotates),
            queues: leak_slice(queues.collect()),
            schedules: leak_slice(schedules.collect()),
            sends: leak_all(self.sends),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
[package]
name = "items"
description = "Items."
[package.metadata.function]
memory_mb = 256
timeout_seconds = 10
"#;

    const ROUTE: &str = r#"
[[package.metadata.function.routes]]
method = "GET"
path = "/items/{id}"
api_key = "required"
"#;

    fn error(text: &str) -> String {
        parse("functions/items/Cargo.toml", text).unwrap_err()
    }

    #[test]
    fn a_crate_without_the_section_is_no_function() {
        let text = "[package]\nname = \"common\"\n[dependencies]\nserde = \"1\"\n";
        assert!(
            parse("functions/common/Cargo.toml", text)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_declaration_becomes_the_librarys_function_with_the_package_description() {
        let grant = r#"
[[package.metadata.function.grants]]
sid = "ListItems"
why = "Lists items."
table = "users"
index = "by-kind"
actions = ["dynamodb:Query"]
"#;
        let f = parse("f", &format!("{HEAD}{ROUTE}{grant}"))
            .unwrap()
            .unwrap()
            .into_static();
        assert_eq!(
            (f.name, f.description, f.memory_mb, f.timeout_seconds),
            ("items", "Items.", 256, 10)
        );
        assert_eq!(
            f.routes,
            [crate::Route {
                method: "GET",
                path: "/items/{id}",
                api_key: crate::ApiKey::Required,
                query: &[],
                cached: false
            }]
        );
        assert_eq!(
            f.grants,
            [crate::Grant {
                sid: "ListItems",
                tables: &["users"],
                index: Some("by-kind"),
                actions: &["dynamodb:Query"],
                only_attributes: &[],
                returning_nothing: false,
                except_keys: &[]
            }]
        );
    }

    #[test]
    fn errors_name_the_file_and_the_fault() {
        let e = error(&format!("{HEAD}colour = \"red\"\n{ROUTE}"));
        assert!(e.starts_with("functions/items/Cargo.toml: "), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");

        let e = error(&format!("{HEAD}{}", ROUTE.replace("GET", "FETCH")));
        assert!(
            e.contains("route FETCH /items/{id}: `method` must be one of"),
            "{e}"
        );
        let e = error(&format!("{HEAD}{}", ROUTE.replace("/items/{id}", "items/")));
        assert!(e.contains("`path` must be"), "{e}");
        let e = error(&format!(
            "{HEAD}{}",
            ROUTE.replace("/items/{id}", "/items/{}")
        ));
        assert!(e.contains("`path` must be"), "{e}");
        let e = error(&format!("{HEAD}{ROUTE}{ROUTE}"));
        assert!(e.contains("route GET /items/{id} is declared twice"), "{e}");
        let e = error(&format!("{HEAD}{}", ROUTE.replace("required", "sometimes")));
        assert!(e.contains("unknown variant `sometimes`"), "{e}");
        let e = error(HEAD);
        assert!(e.contains("nothing invokes it: declare"), "{e}");
        let e = error(&format!("{}{ROUTE}", HEAD.replace("256", "64")));
        assert!(
            e.contains("`memory_mb` must be 128..=10240, found 64"),
            "{e}"
        );
    }

    #[test]
    fn grants_name_real_tables_and_actions() {
        let grant = |body: &str| {
            format!(
                "{HEAD}{ROUTE}[[package.metadata.function.grants]]\nsid = \"G\"\nwhy = \"w\"\n{body}"
            )
        };
        let e = error(&grant(
            "table = \"items\"\nactions = [\"dynamodb:GetItem\"]",
        ));
        assert!(
            e.contains("grant `G`: unknown table `items` (the service has users, sessions)"),
            "{e}"
        );
        let e = error(&grant(
            "table = \"users\"\nindex = \"by-user\"\nactions = [\"dynamodb:Query\"]",
        ));
        assert!(e.contains("table `users` has no index `by-user`"), "{e}");
        let e = error(&grant("table = \"users\"\nactions = [\"dynamodb:*\"]"));
        assert!(e.contains("no wildcards"), "{e}");
        let e = error(&grant("actions = [\"dynamodb:GetItem\"]"));
        assert!(e.contains("exactly one of `table"), "{e}");
        let e = error(&grant(
            "table = \"users\"\nactions = [\"dynamodb:GetItem\"]\nonly_attributes = []",
        ));
        assert!(
            e.contains("`only_attributes` must name at least one"),
            "{e}"
        );
    }

    /// The root manifest's secret properties: offered for declared secrets only, with known
    /// keys and `generate` kinds only.
    #[test]
    fn secret_properties_are_checked_against_the_declarations() {
        let f = parse("f", &format!("{HEAD}secrets = [\"payments-key\"]\n{ROUTE}"))
            .unwrap()
            .unwrap();
        let functions = [f];
        let root = |block: &str| format!("[workspace]\nmembers = []\n{block}");
        let props = |block: &str| secret_properties(&root(block), &functions);
        assert_eq!(props("").unwrap(), []);
        let generated =
            props("[workspace.metadata.secrets.payments-key]\ngenerate = \"key-ring\"").unwrap();
        assert_eq!(
            generated,
            [SecretProperties {
                name: "payments-key".into(),
                generate: Some(secrets::Generate::KeyRing),
                rotation_days: None,
            }]
        );
        assert_eq!(
            generated[0].generated(),
            Some(secrets::Generated {
                name: "payments-key",
                generate: secrets::Generate::KeyRing,
                rotation_days: None
            })
        );
        let set_by_hand = props("[workspace.metadata.secrets.payments-key]").unwrap();
        assert_eq!(set_by_hand[0].generated(), None);
        let e =
            props("[workspace.metadata.secrets.signing-key]\ngenerate = \"key-ring\"").unwrap_err();
        assert!(
            e.contains("no function declares a secret `signing-key` (declared: payments-key)"),
            "{e}"
        );
        let e =
            props("[workspace.metadata.secrets.payments-key]\ngenerate = \"uuid\"").unwrap_err();
        assert!(
            e.contains("`generate = \"uuid\"` is no kind of generated value (known: key-ring)"),
            "{e}"
        );
        let e = props("[workspace.metadata.secrets.payments-key]\nrotate = true").unwrap_err();
        assert!(e.contains("unknown field `rotate`"), "{e}");
    }

    #[test]
    fn secrets_are_named_by_the_rules_once_each() {
        let with = |list: &str| format!("{HEAD}secrets = [{list}]\n{ROUTE}");
        let f = parse("f", &with("\"payments-key\""))
            .unwrap()
            .unwrap()
            .into_static();
        assert_eq!(f.secrets, ["payments-key"]);
        assert!(f.rotates.is_empty() && f.sends.is_empty());
        let e = error(&with("\"Payments_Key\""));
        assert!(
            e.contains("secret `Payments_Key`: use 1-64 characters"),
            "{e}"
        );
        let e = error(&with("\"a\", \"a\""));
        assert!(e.contains("secret `a` is in `secrets` twice"), "{e}");
    }

    /// `rotation_days`: in Secrets Manager's range, on a generated secret, with exactly one
    /// function that `rotates` it; a function rotates only such secrets and may have no route.
    #[test]
    fn rotation_needs_a_generated_secret_and_one_rotating_function() {
        let reader = parse("f", &format!("{HEAD}secrets = [\"peppers\"]\n{ROUTE}"))
            .unwrap()
            .unwrap();
        let rotator = |name: &str| {
            let head = HEAD.replace("items", name);
            parse("f", &format!("{head}rotates = [\"peppers\"]\n"))
                .unwrap()
                .unwrap()
        };
        let root = |block: &str| {
            format!("[workspace]\nmembers = []\n[workspace.metadata.secrets.peppers]\n{block}")
        };
        let generated = "generate = \"key-ring\"\n";
        let functions = [reader, rotator("rotation")];
        let props = |block: &str| secret_properties(&root(block), &functions);

        let rotated = props(&format!("{generated}rotation_days = 30")).unwrap();
        assert_eq!(rotated[0].rotation_days, Some(30));
        assert_eq!(rotated[0].generated().unwrap().rotation_days, Some(30));
        assert!(functions[1].routes.is_empty(), "the rotator has no route");
        for (block, expected) in [
            (format!("{generated}rotation_days = 0"), "must be 1..=1000"),
            (
                format!("{generated}rotation_days = 1001"),
                "must be 1..=1000",
            ),
            ("rotation_days = 30".to_owned(), "needs `generate`"),
            // Rotated by `rotation`, but without `rotation_days` nothing would invoke it.
            (generated.to_owned(), "has no `rotation_days`"),
        ] {
            let e = props(&block).unwrap_err();
            assert!(e.contains(expected), "{block}: {e}");
        }
        let [reader, first] = functions;
        let two = [reader, first, rotator("again")];
        let e =
            secret_properties(&root(&format!("{generated}rotation_days = 30")), &two).unwrap_err();
        assert!(e.contains("rotated by rotation, again"), "{e}");
        let e = secret_properties(&root(&format!("{generated}rotation_days = 30")), &two[..1])
            .unwrap_err();
        assert!(e.contains("no function rotates it"), "{e}");
        let e = error(&format!("{HEAD}rotates = [\"a\", \"a\"]\n"));
        assert!(e.contains("secret `a` is in `rotates` twice"), "{e}");
    }

    /// A queue worker and a scheduled function need no route; a queue has one consumer and is
    /// sent to only once declared; settings stay inside SQS's and Lambda's ranges.
    #[test]
    fn queues_and_schedules_are_triggers_checked_across_functions() {
        let queue = "[[package.metadata.function.queues]]\nname = \"jobs\"\n";
        let worker = parse("w", &format!("{HEAD}{queue}")).unwrap().unwrap();
        let schedule = "[[package.metadata.function.schedules]]\nexpression = \"rate(1 day)\"\ninput = { report = \"all\" }\n";
        let nightly = parse(
            "n",
            &format!("{}{schedule}", HEAD.replace("items", "nightly_job")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            worker.into_static().queues,
            [crate::Queue {
                name: "jobs",
                batch_size: 10,
                batching_window_seconds: 0,
                max_receives: 3,
                example: "{}"
            }]
        );
        assert_eq!(
            nightly.into_static().schedules,
            [crate::Schedule {
                name: "nightly-job",
                expression: "rate(1 day)",
                input: r#"{"report":"all"}"#
            }]
        );
        let functions = |extra: &str| {
            let w = parse("w", &format!("{HEAD}{queue}{extra}"))
                .unwrap()
                .unwrap();
            let s = parse(
                "s",
                &format!(
                    "{}sends = [\"jobs\"]\n{ROUTE}",
                    HEAD.replace("items", "sender")
                ),
            )
            .unwrap()
            .unwrap();
            [w, s]
        };
        check_all(&functions("")).unwrap();
        let [_, sender] = functions("");
        let e = check_all(&[sender]).unwrap_err();
        assert!(
            e.contains("sends to queue `jobs`, which no function consumes"),
            "{e}"
        );
        let again = parse("a", &format!("{}{queue}", HEAD.replace("items", "again")))
            .unwrap()
            .unwrap();
        let [w, _] = functions("");
        let e = check_all(&[w, again]).unwrap_err();
        assert!(
            e.contains("queue `jobs` is consumed by both `items` and `again`"),
            "{e}"
        );
        for (extra, expected) in [
            (
                "batch_size = 0\n",
                "`batch_size` must be 1..=10000, found 0",
            ),
            ("batch_size = 100\n", "needs `batching_window_seconds`"),
            ("batching_window_seconds = 301\n", "must be 0..=300"),
            ("max_receives = 0\n", "must be 1..=1000"),
            ("visibility = 30\n", "unknown field `visibility`"),
        ] {
            let e = error(&format!("{HEAD}{queue}{extra}"));
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let e = error(&format!("{HEAD}{}", schedule.replace("1 day", "1 days")));
        assert!(
            e.contains("schedule `items`: schedule expression `rate(1 days)`"),
            "{e}"
        );
        let two = parse("t", &format!("{HEAD}{schedule}{schedule}"))
            .unwrap()
            .unwrap();
        let e = check_all(&[two]).unwrap_err();
        assert!(
            e.contains("schedule `items` is declared by `items` and `items`"),
            "{e}"
        );
        let e = error(&format!("{HEAD}sends = [\"jobs\", \"jobs\"]\n{ROUTE}"));
        assert!(e.contains("queue `jobs` is in `sends` twice"), "{e}");
    }

    #[test]
    fn a_path_belongs_to_one_function() {
        let items = parse("a", &format!("{HEAD}{ROUTE}")).unwrap().unwrap();
        let other =
            format!("{HEAD}{}", ROUTE.replace("GET", "DELETE")).replace("\"items\"", "\"other\"");
        let other = parse("b", &other).unwrap().unwrap();
        let e = check_all(&[items, other]).unwrap_err();
        assert!(
            e.contains("path /items/{id} is declared by both `items` and `other`"),
            "{e}"
        );
    }

    #[test]
    fn members_are_read_in_order_and_globs_refused() {
        let root = "[workspace]\nmembers = [\"functions/common\", \"infra\", \"functions/b\", \"functions/a\"]\n";
        assert_eq!(
            function_members(root).unwrap(),
            ["functions/common", "functions/b", "functions/a"]
        );
        let e = function_members("[workspace]\nmembers = [\"functions/*\"]\n").unwrap_err();
        assert!(e.contains("is a glob"), "{e}");
    }

    /// What `FUNCTIONS` reads, from real files: the members' manifests in order, a library
    /// skipped, and a bad or missing manifest refused by its path.
    #[test]
    fn a_workspace_is_read_from_its_manifests_and_a_bad_one_is_named() {
        let root = std::env::temp_dir().join(format!("catalog-read-{}", std::process::id()));
        let write = |file: &str, text: &str| {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"functions/lib\", \"functions/items\", \"infra\"]\n\
             [workspace.metadata.secrets.payments-key]\n",
        );
        write("functions/lib/Cargo.toml", "[package]\nname = \"lib\"\n");
        let items = format!("{HEAD}secrets = [\"payments-key\"]\n{ROUTE}");
        write("functions/items/Cargo.toml", &items);
        let (functions, properties) = read_workspace(&root).unwrap();
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["items"]);
        assert_eq!(properties[0].name, "payments-key");

        write(
            "functions/items/Cargo.toml",
            &items.replace("memory_mb = 256", "memory = 256"),
        );
        let e = read_workspace(&root).unwrap_err();
        assert!(e.starts_with("functions/items/Cargo.toml: "), "{e}");
        assert!(e.contains("unknown field `memory`"), "{e}");
        std::fs::remove_dir_all(root.join("functions/items")).unwrap();
        let e = read_workspace(&root).unwrap_err();
        assert!(
            e.contains("functions/items/Cargo.toml: No such file"),
            "{e}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
