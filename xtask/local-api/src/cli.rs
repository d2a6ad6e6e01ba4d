//! The command line, declared in one place.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Serve a deployment's REST API on loopback by running its packaged Lambda binaries.
#[derive(Debug, Parser)]
#[command(name = "local-api", version)]
pub struct Cli {
    /// The deployment's outputs file.
    #[arg(long, default_value = "build/local/outputs.json")]
    pub outputs: PathBuf,
    /// Folder holding the function zips (`<fn>.zip`).
    #[arg(long, default_value = "build/dist")]
    pub dist: PathBuf,
    /// The AWS emulator endpoint the functions use (`AWS_ENDPOINT_URL`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint: String,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// 0 picks a free port; the state file says which.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to write `{"pid","port","url","routing"}` once listening.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Where extracted binaries, function logs and `routing.json` go (default:
    /// `<outputs dir>/functions`).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where `cargo xtask watch` writes `<fn>/bootstrap` builds that are served instead of the
    /// alias's code while present (default: `<outputs dir>/watch`).
    #[arg(long)]
    pub watch_dir: Option<PathBuf>,
    /// How often to re-read the aliases, in milliseconds; 0: only on SIGHUP.
    #[arg(long, default_value_t = local_api::server::DEFAULT_ALIAS_POLL.as_millis() as u64)]
    pub alias_poll_ms: u64,
    /// API Gateway's integration timeout in milliseconds (29 s on AWS).
    #[arg(long, default_value_t = 29_000)]
    pub integration_timeout_ms: u64,
    /// Concurrent processes per function version (the local stand-in for Lambda scaling).
    #[arg(long, default_value_t = 4)]
    pub max_instances: usize,
    /// Whether GET /health needs the API key; default: the environment file's setting.
    #[arg(long, value_parser = ["required", "open"])]
    pub health_api_key: Option<String>,
    /// Browser origins allowed to call the API, comma-separated (empty: none); default: the
    /// environment file's `api.cors_allow_origins`.
    #[arg(long)]
    pub cors_allow_origins: Option<String>,
    /// Fire every declared schedule this often (e.g. `30s`) instead of on its own expression:
    /// to watch a daily job work without waiting a day.
    /// `cargo xtask deploy` and `watch` start the server with the environment they run in, so
    /// `LOCAL_API_SCHEDULE_EVERY=30s cargo xtask deploy` sets it too.
    #[arg(long, env = "LOCAL_API_SCHEDULE_EVERY", value_parser = humantime::parse_duration)]
    pub schedule_every: Option<Duration>,
}

impl Cli {
    pub fn into_options(self) -> local_api::Options {
        let mut options = local_api::Options::new(self.outputs, self.dist, self.endpoint);
        options.host = self.host;
        options.port = self.port;
        options.state = self.state;
        options.work_dir = self.work_dir;
        options.watch_dir = self.watch_dir;
        options.integration_timeout = Duration::from_millis(self.integration_timeout_ms);
        options.max_instances = self.max_instances;
        options.alias_poll =
            (self.alias_poll_ms > 0).then(|| Duration::from_millis(self.alias_poll_ms));
        options.health_requires_api_key = self.health_api_key.map(|v| v == "required");
        options.schedule_every = self.schedule_every;
        options.cors_allow_origins = self.cors_allow_origins.map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect()
        });
        options
    }
}
