//! The service's functions, declared once: each function crate's own `Cargo.toml` says what
//! the function serves and may do, and infra, xtask, the local API server and smoke read this
//! crate instead of keeping lists of their own. Adding a function is adding its crate to the
//! workspace's `members`; nothing else names it.
//!
//! The build script reads the root `Cargo.toml`'s `members`, takes every one under
//! `functions/` whose manifest has a `[package.metadata.function]` section, checks it (unknown
//! keys, methods, paths, duplicate routes, unknown tables and indexes fail the build with the
//! manifest's path) and compiles it into [`FUNCTIONS`], in `members` order.
//!
//! # The declaration
//! ```toml
//! [package.metadata.function]
//! description = "..."        # optional: the package's description otherwise (Lambda: <= 256)
//! memory_mb = 256            # 128..=10240; `[lambda] memory_mb` in an environment overrides
//! timeout_seconds = 10       # 1..=900; `[lambda] timeout_seconds` overrides
//!
//! [[package.metadata.function.routes]]   # routes, queues, schedules and `rotates`: any mix,
//!                                        # at least one (something must invoke it)
//! method = "GET"             # GET, POST, PUT, PATCH, DELETE or HEAD
//! path = "/users/{id}"       # API Gateway template; a path belongs to one function
//! api_key = "required"       # or "environment": the environment's `api.health_requires_api_key`
//! query = ["limit"]          # optional: query parameters read (part of the cache key)
//! cached = true              # optional, GET only: may be answered from the stage cache
//!
//! [[package.metadata.function.grants]]   # what the function's role may do on the tables
//! sid = "UserItems"          # the IAM statement id
//! why = "..."                # required: what the function needs it for
//! table = "users"            # a table of `tables` (or `tables = ["users", "sessions"]`)
//! index = "by-kind"          # optional: the grant is on this index of `table` instead
//! actions = ["dynamodb:GetItem"]          # by name, no wildcards
//! only_attributes = ["pk", "generation"]  # optional: `dynamodb:Attributes` condition
//! returning_nothing = true                # optional: `dynamodb:ReturnValues` = NONE
//! except_keys = ["login#*"]               # optional: no item whose key is like these
//!
//! secrets = ["payments-key"] # optional, in [package.metadata.function] itself: the secrets
//!                            # it reads (`secrets::check_name`); set with `cargo xtask secret`
//! rotates = ["password-peppers"] # optional: it is the rotation function of these secrets
//!                            # (each with `rotation_days`, exactly one function each)
//! sends = ["session-sweeps"] # optional: queues (of any function) it sends messages to
//!
//! [[package.metadata.function.queues]]   # an SQS queue it consumes (`queues`), one consumer each
//! name = "session-sweeps"    # 1-40 of a-z, 0-9 and '-'; with a dead-letter queue
//! batch_size = 10            # optional, 1..=10000 (over 10 needs a batching window); 10
//! batching_window_seconds = 0  # optional, 0..=300
//! max_receives = 3           # optional, 1..=1000: receives before the dead-letter queue
//! example = { user_id = "..." }  # optional: a body it accepts (`invoke --example sqs`, bench)
//!
//! [[package.metadata.function.schedules]]  # EventBridge Scheduler invokes it (`schedules`)
//! expression = "rate(1 day)" # or "cron(0 3 * * ? *)"
//! name = "table-report"      # optional: the function's name, '_' written '-'
//! input = { report = "all" } # optional: the event's `detail`, as JSON
//! ```
//! A secret's properties, whichever functions declare it, are in the root `Cargo.toml`, once
//! ([`GENERATED`]):
//! ```toml
//! [workspace.metadata.secrets.password-peppers]
//! generate = "key-ring"      # optional: the value is generated (`secrets::Generate`)
//! rotation_days = 30         # optional, generated secrets only: Secrets Manager rotates it
//!                            # (`secrets::ROTATION_DAYS`) with the function that `rotates` it
//! ```
//! Every function gets the name of every table as `<TABLE>_TABLE` ([`tables::variable`])
//! next to the other variables every function gets; its grants are what it may do with them.

mod names;
pub mod queues;
pub mod schedules;
pub mod secrets;
pub mod tables;

#[cfg(any(test, feature = "manifest"))]
pub mod manifest;

/// A function of the service, as its crate declares it.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    /// The package name: binary, AWS name suffix, and Terraform name of its resources.
    pub name: &'static str,
    pub description: &'static str,
    /// The default; an environment may override it for every function.
    pub memory_mb: u32,
    /// The default; an environment may override it for every function.
    pub timeout_seconds: u32,
    /// The API routes it serves: one kind of trigger. A function has at least one trigger:
    /// a route, a queue, a schedule or a secret it rotates.
    pub routes: &'static [Route],
    pub grants: &'static [Grant],
    /// The secrets it reads: infra creates each once, grants reading it to exactly the
    /// functions that declare it and hands them its ARN ([`secrets::variable`]).
    pub secrets: &'static [&'static str],
    /// The generated secrets it is the rotation function of (each has `rotation_days`):
    /// Secrets Manager invokes it, it has no routes of its own.
    pub rotates: &'static [&'static str],
    /// The SQS queues it consumes: Lambda polls each and invokes it with batches.
    pub queues: &'static [Queue],
    /// The schedules on which EventBridge Scheduler invokes it.
    pub schedules: &'static [Schedule],
    /// The queues it sends messages to (declared by their consumer): its role may
    /// `sqs:SendMessage` to exactly these, and it gets each one's URL ([`queues::variable`]).
    pub sends: &'static [&'static str],
}

/// A queue a function consumes, with its dead-letter queue (`queues` has the rules).
#[derive(Debug, PartialEq, Eq)]
pub struct Queue {
    pub name: &'static str,
    /// The most records per invocation.
    pub batch_size: u32,
    /// How long the poller may gather a batch, in seconds.
    pub batching_window_seconds: u32,
    /// Receives before SQS moves a message to the dead-letter queue.
    pub max_receives: u32,
    /// A message body the consumer accepts, as JSON text (`{}` when the declaration gives
    /// none): what `cargo xtask invoke --example sqs` and the benchmark send.
    pub example: &'static str,
}

/// A schedule that invokes a function with an EventBridge Scheduler event.
#[derive(Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Unique across the service: part of the Scheduler name.
    pub name: &'static str,
    /// `rate(...)` or `cron(...)` ([`schedules::parse`] reads it).
    pub expression: &'static str,
    /// The event's `detail` as JSON text; `{}` when the declaration gives none.
    pub input: &'static str,
}

/// A route a function serves.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// Upper-case HTTP method as API Gateway spells it.
    pub method: &'static str,
    /// Path template in API Gateway syntax (`{id}` is a path parameter).
    pub path: &'static str,
    pub api_key: ApiKey,
    /// Query-string parameters the function reads.
    pub query: &'static [&'static str],
    /// Whether the stage cache, when an environment turns it on, may answer this GET.
    pub cached: bool,
}

/// Whether a route needs the API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKey {
    Required,
    /// The environment decides (`api.health_requires_api_key`): `/health` is open in some
    /// environments and keyed in others.
    Environment,
}

/// What a function's role may do on the service's tables: one IAM statement.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    pub sid: &'static str,
    /// Logical table names ([`tables::ALL`]).
    pub tables: &'static [&'static str],
    /// An index of the (single) table: the grant is on the index instead of the table.
    pub index: Option<&'static str>,
    pub actions: &'static [&'static str],
    /// Empty: any attribute.
    pub only_attributes: &'static [&'static str],
    pub returning_nothing: bool,
    /// Key patterns (`*` wildcards) the grant never reaches: `dynamodb:LeadingKeys` may match
    /// none of them. Empty: any key.
    pub except_keys: &'static [&'static str],
}

/// Every function, in the order of the workspace's `members`.
pub static FUNCTIONS: &[Function] = include!(concat!(env!("OUT_DIR"), "/functions.rs"));

/// The function called `name`.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The function names, in [`FUNCTIONS`] order: the Cargo packages, the binaries and the
/// suffix of the Lambda function names.
pub const NAMES: &[&str] = include!(concat!(env!("OUT_DIR"), "/names.rs"));

/// The declared secrets whose value is generated (`generate` in the root manifest's
/// `[workspace.metadata.secrets.<name>]`), in name order.
pub static GENERATED: &[secrets::Generated] = include!(concat!(env!("OUT_DIR"), "/generated.rs"));

/// The function that rotates the declared secret `name` (`rotates`), if it rotates.
pub fn rotator(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.rotates.contains(&name))
}

/// The function that consumes the declared queue `name`: exactly one per queue.
pub fn consumer(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .iter()
        .find(|f| f.queues.iter().any(|q| q.name == name))
}

/// Every declared queue with its consumer, in [`FUNCTIONS`] order.
pub fn queues() -> impl Iterator<Item = (&'static Function, &'static Queue)> {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.queues.iter().map(move |q| (f, q)))
}

/// Every declared schedule with its function, in [`FUNCTIONS`] order.
pub fn schedules() -> impl Iterator<Item = (&'static Function, &'static Schedule)> {
    FUNCTIONS
        .iter()
        .flat_map(|f| f.schedules.iter().map(move |s| (f, s)))
}

/// How the value of the declared secret `name` is generated; `None`: a person sets it.
pub fn generated(name: &str) -> Option<secrets::Generate> {
    GENERATED
        .iter()
        .find(|g| g.name == name)
        .map(|g| g.generate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_functions_in_members_order() {
        assert_eq!(
            NAMES,
            [
                "health",
                "users",
                "sessions",
                "rotation",
                "sweeper",
                "table_report"
            ]
        );
        assert!(FUNCTIONS.iter().map(|f| f.name).eq(NAMES.iter().copied()));
        let health = find("health").unwrap();
        assert_eq!(health.routes[0].api_key, ApiKey::Environment);
        assert!(
            find("common").is_none(),
            "a crate without the section is no function"
        );
    }

    #[test]
    fn the_pepper_ring_is_generated() {
        assert_eq!(
            generated("password-peppers"),
            Some(secrets::Generate::KeyRing)
        );
        assert_eq!(secrets::Generate::KeyRing.kind(), "key-ring");
        let rotated = GENERATED
            .iter()
            .find(|g| g.name == "password-peppers")
            .unwrap();
        assert_eq!(rotated.rotation_days, Some(30));
        let rotator = rotator("password-peppers").unwrap();
        assert_eq!(rotator.name, "rotation");
        assert!(rotator.routes.is_empty());
    }
}
