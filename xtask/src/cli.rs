//! The whole command line, declared in one place (rust-analyzer keeps its in
//! `flags.rs`); `main.rs` only dispatches on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::base::release_strategy::Strategy;
use crate::services::scaffold::{RouteSpec, TableGrant};

/// Build, deploy and prove the service, locally or on AWS.
///
/// The default environment is `local`: an AWS emulator on loopback that
/// `cargo xtask deploy` installs and starts itself, so no AWS account is needed.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    propagate_version = true
)]
#[command(after_help = "Examples:\n  \
    cargo xtask deploy                 # build, package and deploy to the local emulator\n  \
    cargo xtask smoke                  # prove the deployed stack works\n  \
    cargo xtask deploy --env dev       # the same against a real AWS account\n  \
    cargo xtask doctor                 # which tools and credentials are present")]
pub struct Xtask {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Environment to act on: a file name (without `.toml`) in infra/environments.
    #[arg(
        long,
        global = true,
        default_value = "local",
        env = "XTASK_ENV",
        value_name = "NAME"
    )]
    pub env: String,
    /// Act on this stage of the environment: a copy of its service stack whose every name is
    /// `<prefix><stage>-...`, tagged `Stage`, with its own state, sharing only the bootstrap
    /// stack (`deploy --stage alice`, `smoke --stage alice`, `destroy --stage alice`). The
    /// environment file must allow stages (`stages = true`: local and dev, not prod).
    #[arg(long, global = true, env = "XTASK_STAGE", value_name = "NAME")]
    pub stage: Option<String>,
    /// Print a machine-readable JSON result on stdout; progress goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Stream the full output of cargo and terraform instead of a progress line and a summary
    /// (it is always in build/<env>/logs/).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile the function binaries in release mode and check they run on Lambda's OS.
    Build(BuildArgs),
    /// Build, check and zip the functions into reproducible, content-addressed packages.
    Package(PackageArgs),
    /// Write the Terraform JSON for the environment into infra/cdktf.out.
    Synth,
    /// Show what `deploy` would change, without changing anything.
    Plan(PlanArgs),
    /// What this checkout changes against another commit's synthesized stacks: resources
    /// added, changed and removed, IAM statements that widen access, and the cost of both
    /// (the pull request comment of `.github/workflows/stage.yml`).
    #[command(after_help = "Examples:\n  \
        (cd ../base && cargo run -p infra --bin infra -- synth --env dev --out /tmp/base-synth)\n  \
        cargo xtask compare --env dev --base /tmp/base-synth\n  \
        cargo xtask compare --env dev --base /tmp/base-synth --markdown > compare.md")]
    Compare(CompareArgs),
    /// Build, package, upload, apply and wait until the functions are live.
    Deploy(DeployArgs),
    /// Print the deployed stack's outputs (API URL, table names, ...); secrets masked.
    #[command(
        after_help = "Sensitive outputs (those Terraform marks `sensitive`, such as \
        api_key_value and every client's api_key_value_<client>) are listed as \
        `<sensitive: add --show-sensitive>`.\n\
        Each client of `[[api.clients]]` has its own key: `api_clients` lists their names, key \
        ids and limits; `api_key_value_<client>` ('-' as '_') is its key, and `api_key_value` \
        the first client's.\n\
        Asked for by name without --show-sensitive, a sensitive output prints nothing on stdout, \
        says why on stderr and exits with status 1, so `KEY=$(cargo xtask outputs api_key_value)` \
        fails in a script instead of capturing a placeholder.\n\n\
        Examples:\n  \
        cargo xtask outputs api_url\n  \
        cargo xtask outputs api_key_value --show-sensitive\n  \
        cargo xtask outputs api_key_value_app --show-sensitive"
    )]
    Outputs(OutputsArgs),
    /// Print a function's logs, or with --all every function's and the API access log merged
    /// by time: CloudWatch on AWS, the local API server's log files on `local`.
    #[command(after_help = "Examples:\n  \
        cargo xtask logs users --since 1h --filter ERROR\n  \
        cargo xtask logs --all --follow")]
    Logs(LogsArgs),
    /// From a request id (the `x-request-id` header, an error body's `request_id`) to its
    /// cause: the access-log line and every function log line of that request, in order, with
    /// the DynamoDB calls made and the first failure.
    #[command(after_help = "Examples:\n  \
        cargo xtask trace 6f1c2f3e-0d7a-4b7e-9a51-3c9e1f0b2a77\n  \
        cargo xtask trace 6f1c2f3e-0d7a-4b7e-9a51-3c9e1f0b2a77 --env dev --since 1d")]
    Trace(TraceArgs),
    /// Per-route requests, errors and p50/p99 latency from the functions' metric (EMF) lines
    /// on `local`; with --follow a table that refreshes.
    Stats(StatsArgs),
    /// Rebuild the functions a saved change affects and serve them from the local API server
    /// at once (dev profile; no Terraform, no upload). Ctrl-C stops and restores the packages.
    Watch,
    /// Send one event to a function and print its response and log lines: through the local
    /// runtime on `local`, to the deployed `live` alias with `--env NAME`.
    Invoke(InvokeArgs),
    /// Delete everything the environment's service stack created.
    Destroy(DestroyArgs),
    /// Create the state and artifacts buckets of a real AWS account (once per account).
    Bootstrap(BootstrapArgs),
    /// List the tools and credentials found, with versions, and what each one enables; with
    /// `--env NAME` for an environment with `[delivery]` and the GitHub CLI, also the GitHub
    /// settings its release path needs that are missing (environments, rulesets, OIDC subject).
    Doctor,
    /// Manage the local AWS emulator (moto) and the local API server.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Run the smoke tests against the deployed environment.
    Smoke(SmokeArgs),
    /// Point each function's `live` alias back to the version it served
    /// before the last release (100% of the traffic, no routing weights).
    /// The record lives on the aliases, so this works from any machine.
    Rollback(RollbackArgs),
    /// Measure deploy, package and cold-start figures and estimate costs.
    Bench(BenchArgs),
    /// Run the project's whole test suite and scans, as CI does.
    Test(TestArgs),
    /// Scaffold a function crate (declaration, handler, its test; OpenAPI for routes) that
    /// `deploy` serves at once: an API route handler, a queue worker or a scheduled job.
    #[command(after_help = "Examples:\n  \
        cargo xtask new items --route \"GET /items\" --route \"POST /items\" --table users:write\n  \
        cargo xtask new reports --route \"GET /reports/{id}\" --table users:read:by-kind\n  \
        cargo xtask new charges --route \"POST /charges\" --secret payments-key\n  \
        cargo xtask new mailer --queue emails --batch-size 5\n  \
        cargo xtask new nightly --schedule \"cron(0 3 * * ? *)\" --table users:read")]
    New(NewArgs),
    /// Take a function crate out of the workspace (`deploy` then takes it off the stack).
    Remove(RemoveArgs),
    /// Set, list, rotate, show or remove the values of the secrets functions declare (`secrets = [...]`
    /// in their manifest), straight in Secrets Manager: never through Terraform.
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  \
        cargo xtask secret set payments-key --env dev          # prompts, without echo\n  \
        printf %s \"$KEY\" | cargo xtask secret set payments-key  # from standard input\n  \
        cargo xtask secret set password-peppers --generate --env dev  # a generated value\n  \
        cargo xtask secret list --json\n  \
        cargo xtask secret keys password-peppers --env dev\n  \
        cargo xtask secret rotate password-peppers --env dev\n  \
        cargo xtask secret get payments-key --show-sensitive")]
    Secret(SecretCommand),
    /// List the environment's stages (age, last deploy, commit, URL); `stages sweep` destroys
    /// the idle ones.
    #[command(after_help = "Examples:\n  \
        cargo xtask stages --env dev\n  \
        cargo xtask stages sweep --env dev --older-than 72h --yes")]
    Stages(StagesArgs),
}

/// One kind of trigger per scaffold (`trigger`): a route handler, a queue worker and a scheduled
/// job each have their own handler signature.
#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("trigger").required(true).args(["routes", "queue", "schedule"])))]
pub struct NewArgs {
    /// The function's name: the crate, binary and AWS name suffix (a-z, 0-9, '_').
    pub name: String,
    /// A route it serves, "METHOD /path" (API Gateway template, `{param}` for a parameter);
    /// repeat for more. Every route needs the API key.
    #[arg(long = "route", value_name = "ROUTE", value_parser = RouteSpec::parse)]
    pub routes: Vec<RouteSpec>,
    /// A queue it consumes instead (a-z, 0-9, '-'): infra creates it with its dead-letter
    /// queue; the handler takes an SQS batch and reports the records that failed. Not with
    /// --route or --schedule.
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,
    /// With --queue: the most records per invocation (the catalog's default otherwise).
    #[arg(long, value_name = "N", conflicts_with_all = ["routes", "schedule"])]
    pub batch_size: Option<u32>,
    /// A schedule it runs on instead, in EventBridge Scheduler's syntax: "rate(5 minutes)" or
    /// "cron(0 3 * * ? *)"; the handler takes the Scheduled Event. Not with --route or --queue.
    #[arg(long, value_name = "EXPRESSION")]
    pub schedule: Option<String>,
    /// A table it may use: `TABLE[:read|:write][:INDEX]`. read = GetItem and Query; write adds
    /// PutItem, UpdateItem and DeleteItem; INDEX also grants Query on that index.
    #[arg(long = "table", value_name = "TABLE", value_parser = TableGrant::parse)]
    pub tables: Vec<TableGrant>,
    /// A secret it reads (a-z, 0-9, '-'): infra creates it and grants it to this function;
    /// `cargo xtask secret set NAME` gives it a value. Repeat for more.
    #[arg(long = "secret", value_name = "NAME")]
    pub secrets: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct RemoveArgs {
    /// The function to remove.
    pub name: String,
    /// Also remove a function committed to git (one of the service's own).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RollbackArgs {
    /// Only undo a release that did not finish (a deploy that failed, was
    /// killed or timed out mid-release); succeed doing nothing otherwise.
    /// What the deploy workflow runs after any deploy that did not succeed.
    #[arg(long)]
    pub unfinished: bool,
    /// With --unfinished: only a release that started longer ago than this
    /// (e.g. `65m`), since a younger one may belong to a deploy still running.
    /// What the scheduled release check runs.
    #[arg(long, value_name = "DURATION", requires = "unfinished", value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct BuildArgs {
    /// Skip the ELF compatibility check (not recommended).
    #[arg(long)]
    pub no_check: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PackageArgs {
    /// Package binaries from this directory (named after the functions)
    /// instead of building them; for pipelines that build in an earlier job.
    #[arg(long, value_name = "DIR")]
    pub prebuilt: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Which stack to plan.
    #[arg(long, value_enum, default_value_t = StackChoice::Service)]
    pub stack: StackChoice,
    /// Package binaries from this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    pub prebuilt: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// The base's synthesized stacks: a folder `infra synth --out DIR` or `cargo xtask synth`
    /// wrote in the other checkout (`DIR/stacks/<stack>/cdk.tf.json`).
    #[arg(long, value_name = "DIR")]
    pub base: PathBuf,
    /// Print the pull request comment's Markdown instead of the summary (not with --json).
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StackChoice {
    Bootstrap,
    Service,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DeployArgs {
    /// Apply even when nothing changed since the last successful deploy.
    #[arg(long)]
    pub force: bool,
    /// Package binaries from this directory (named after the functions)
    /// instead of building them.
    #[arg(long, value_name = "DIR")]
    pub prebuilt: Option<PathBuf>,
    /// For `local`: do not start the local API server at the end.
    #[arg(long)]
    pub no_serve: bool,
    /// When only function code changed since the last deploy, update it
    /// directly through the Lambda API (new version, then released like any
    /// other) instead of running Terraform; seconds instead of a minute. For
    /// development: the next plain deploy reconciles Terraform's state.
    #[arg(long, conflicts_with = "force")]
    pub hotswap: bool,
    /// How traffic moves to the new versions, instead of the environment's
    /// `[options.traffic_shifting]`: `all-at-once`, `canary:PERCENT:INTERVAL`
    /// or `linear:PERCENT:INTERVAL` (e.g. `canary:10:5m`). The alarms are
    /// the gate of every step either way.
    #[arg(long, value_name = "SPEC", value_parser = Strategy::parse)]
    pub shift: Option<Strategy>,
    /// After the release, run the smoke tests against the stack; if they
    /// fail, put the previous versions back (as `rollback` does) and fail.
    #[arg(long)]
    pub smoke: bool,
}

#[derive(Debug, Args, Clone)]
pub struct OutputsArgs {
    /// Print only this output's value (e.g. `api_url`).
    pub name: Option<String>,
    /// Print sensitive values (the API key) instead of masking them; without it, asking for
    /// one by name fails.
    #[arg(long)]
    pub show_sensitive: bool,
}

#[derive(Debug, Args, Clone)]
pub struct LogsArgs {
    /// Function to read (a crate under functions/ that declares one).
    #[arg(
        value_parser = clap::builder::PossibleValuesParser::new(catalog::NAMES.iter().copied()),
        required_unless_present = "all"
    )]
    pub function: Option<String>,
    /// Every function's log and the API's access log, merged by time, each line prefixed with
    /// where it comes from (`api` for the access log).
    #[arg(long, conflicts_with = "function")]
    pub all: bool,
    /// Keep polling for new events until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// How far back to start, e.g. 30s, 10m, 2h, 1d.
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// Only events matching this CloudWatch Logs filter pattern (on `local`: terms, quoted
    /// phrases, `?term` alternatives and `-term` exclusions).
    #[arg(long, allow_hyphen_values = true)]
    pub filter: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct StatsArgs {
    /// The period the figures cover, up to now, e.g. 5m, 1h.
    #[arg(long, default_value = "1h")]
    pub since: String,
    /// Recompute and reprint every 2 s until interrupted.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args, Clone)]
pub struct TraceArgs {
    /// The request id.
    pub request_id: String,
    /// On AWS, how far back the Logs Insights query looks (locally the whole log files are
    /// read), e.g. 30m, 2h, 1d.
    #[arg(long, default_value = "1h")]
    pub since: String,
}

#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("payload").required(true).args(["event", "example", "schedule"])))]
pub struct InvokeArgs {
    /// Function to invoke.
    pub function: String,
    /// A JSON file holding the event.
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
    /// An API Gateway event: `rest` (REST API, payload 1.0) or `http` (HTTP API, payload 2.0)
    /// for one of the function's routes (path parameters set to `example`), or a bundled one:
    /// rest-get-health, rest-post-users, http-get-health, http-post-sessions; or `schedule`:
    /// the event of the function's schedule, as `--schedule` sends it.
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// Run the function's schedule now: the Scheduled Event that schedule sends (its declared
    /// input as detail, a fresh execution id, now as its time). SCHEDULE names one when the
    /// function has several.
    #[arg(long, value_name = "SCHEDULE", num_args = 0..=1)]
    pub schedule: Option<Option<String>>,
    /// The route of a `rest` or `http` example, "METHOD /path" as declared; the function's
    /// first route by default.
    #[arg(long, value_name = "ROUTE", requires = "example")]
    pub route: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DestroyArgs {
    /// Do not ask for confirmation (required for non-local environments when
    /// standard input is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Also destroy the bootstrap stack (artifacts bucket and, for real
    /// accounts, the state bucket).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct BootstrapArgs {
    /// Apply even when the bootstrap stack already exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand, Clone)]
pub enum LocalCommand {
    /// Install (first time) and start the emulator; print its endpoint.
    Up,
    /// Stop the emulator and the local API server started by xtask.
    Down,
    /// Report whether the emulator and the local API server are running
    /// (exit code 3 when the emulator is not).
    Status,
}

#[derive(Debug, Args, Clone)]
pub struct StagesArgs {
    #[command(subcommand)]
    pub command: Option<StagesCommand>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum StagesCommand {
    /// Destroy every stage whose last deploy is older than `--older-than` (each checked for
    /// leftovers as `destroy --stage` does).
    Sweep(SweepArgs),
}

#[derive(Debug, Args, Clone)]
pub struct SweepArgs {
    /// Idle for longer than this since the last deploy (`72h`, `3days`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: std::time::Duration,
    /// Only list what would be destroyed.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required for non-local environments when standard input
    /// is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Subcommand, Clone)]
pub enum SecretCommand {
    /// Store a new value (a new version; functions read it within their cache's TTL). The
    /// value comes from a prompt that does not echo, or from standard input when it is not a
    /// terminal: never from an argument, which shell history and `ps` would keep.
    Set {
        /// The declared secret.
        name: String,
        /// Generate the value instead of reading it (for a secret with a `generate` kind in
        /// the root manifest's `[workspace.metadata.secrets.NAME]`); never printed.
        #[arg(long)]
        generate: bool,
        /// With --generate: replace a value it already has (for a key ring, every password
        /// hash made with its keys then fails to verify).
        #[arg(long, requires = "generate")]
        force: bool,
    },
    /// Every declared secret: which functions read it, its current version id, when it last
    /// changed and how many versions are kept. Never a value.
    List,
    /// For the password pepper ring: how many stored password hashes use each of its keys
    /// (and how many predate the pepper), so a key leaves the ring only when none does. Reads
    /// the ring and scans the users table; prints key ids and counts, never a key or a hash.
    Keys {
        /// The key ring secret (`password-peppers`).
        name: String,
    },
    /// Rotate a secret with `rotation_days` now, with its rotation function: on AWS,
    /// Secrets Manager runs the function's four steps; on an emulator environment, xtask runs
    /// them through the local runtime. Prints the new version and the stages after, never a
    /// value.
    Rotate {
        /// The rotated secret (`password-peppers`).
        name: String,
    },
    /// Print the current value (refused without --show-sensitive).
    Get {
        /// The declared secret.
        name: String,
        /// Print the value on stdout.
        #[arg(long)]
        show_sensitive: bool,
    },
    /// Delete the value and every earlier version at once (no recovery window). The
    /// declaration stays: the next deploy that applies the service stack recreates the secret
    /// empty; remove it from the manifest to retire it.
    Rm {
        /// The declared secret.
        name: String,
    },
}

#[derive(Debug, Args, Clone, Default)]
pub struct SmokeArgs {
    /// Extra arguments passed to the smoke binary.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Cold starts measured per function (the median is printed).
    #[arg(long, default_value_t = 5)]
    pub iterations: usize,
    /// Only measure what needs no deployment (sizes, synth, cold start, costs).
    #[arg(long)]
    pub offline: bool,
    /// How many users register and log in at once for the peak-memory figure.
    #[arg(long, default_value_t = 200)]
    pub burst: usize,
    /// Requests of the capacity model's mix sent to the local API server (and each kind's
    /// share of them alone, to measure the CPU time per request of each route).
    #[arg(long, default_value_t = 1000)]
    pub mix: usize,
}

#[derive(Debug, Args, Clone, Default)]
pub struct TestArgs {
    /// Skip the workflow scans (actionlint, zizmor).
    #[arg(long)]
    pub no_scans: bool,
    /// Compile the tests and install the Python tools, then stop without running anything.
    #[arg(long)]
    pub no_run: bool,
    /// The edit loop's lane: everything but the tests that apply Terraform stacks, scan them
    /// (checkov, terraform validate) or fuzz the contract for minutes (about 2 minutes after a
    /// build, against the full suite's 15). CI runs the full suite.
    #[arg(long)]
    pub fast: bool,
    /// Extra arguments passed to `cargo nextest run` (or `cargo test` without nextest).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Xtask::try_parse_from(["cargo xtask"].iter().chain(args)).map(|x| x.command)
    }

    /// `new` takes one kind of trigger, `--batch-size` only with `--queue`; `invoke --schedule`
    /// takes a schedule's name or none.
    #[test]
    fn new_takes_one_trigger_and_invoke_an_optional_schedule() {
        let Ok(Command::New(args)) =
            parse(&["new", "jobs", "--queue", "jobs", "--batch-size", "5"])
        else {
            panic!("a queue worker parses");
        };
        assert_eq!(
            (args.queue.as_deref(), args.batch_size),
            (Some("jobs"), Some(5))
        );
        for refused in [
            &["new", "x"][..],
            &["new", "x", "--queue", "a", "--schedule", "rate(1 day)"],
            &["new", "x", "--route", "GET /x", "--queue", "a"],
            &["new", "x", "--route", "GET /x", "--schedule", "rate(1 day)"],
            &["new", "x", "--batch-size", "3", "--schedule", "rate(1 day)"],
            &["new", "x", "--batch-size", "3", "--route", "GET /x"],
        ] {
            assert!(parse(refused).is_err(), "{refused:?}");
        }
        let schedule = |args: &[&str]| match parse(args) {
            Ok(Command::Invoke(args)) => args.schedule,
            other => panic!("{other:?}"),
        };
        assert_eq!(schedule(&["invoke", "nightly", "--schedule"]), Some(None));
        assert_eq!(
            schedule(&["invoke", "nightly", "--schedule", "hourly"]),
            Some(Some("hourly".to_owned()))
        );
        assert_eq!(
            schedule(&["invoke", "nightly", "--example", "schedule"]),
            None
        );
        assert!(parse(&["invoke", "nightly", "--schedule", "--example", "rest"]).is_err());
    }
}
