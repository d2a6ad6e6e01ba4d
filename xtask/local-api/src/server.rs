//! Start-up and shutdown: outputs, aliases and packages in, a listening gateway out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use deploy_files::ApiState;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::alias::Emulator;
use crate::deployment::Deployment;
use crate::gateway::{DEFAULT_INTEGRATION_TIMEOUT, Gateway};
use crate::limits::Limits;
use crate::traffic::{Refresher, Table};

/// How often the aliases are re-read by default. xtask sends `SIGHUP` after every alias it
/// moves, so the poll only catches moves made elsewhere (a rollback from another checkout, an
/// `aws lambda update-alias` by hand). It is one `GetAlias` per function per poll: at one
/// second, an idle server and its emulator kept 4% of a core busy (8 calls a second with the
/// queue poller), for as long as the server ran.
pub const DEFAULT_ALIAS_POLL: Duration = Duration::from_secs(10);

/// How the server is started; the CLI maps one-to-one onto this.
#[derive(Debug, Clone)]
pub struct Options {
    /// The deployment's outputs file (`build/<env>/outputs.json`).
    pub outputs: PathBuf,
    /// Folder with `<fn>.zip` packages (`build/dist`).
    pub dist: PathBuf,
    /// The AWS emulator the functions talk to (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Where to write `{"pid","port","url"}` once listening.
    pub state: Option<PathBuf>,
    /// Where the extracted binaries and function logs go; default `<outputs dir>/functions`.
    pub work_dir: Option<PathBuf>,
    /// Where `cargo xtask watch` puts its builds (`<fn>/bootstrap`), served instead of the
    /// alias's code while present (see [`crate::traffic`]); default `<outputs dir>/watch`.
    pub watch_dir: Option<PathBuf>,
    pub integration_timeout: Duration,
    /// Concurrent execution environments per function version.
    pub max_instances: usize,
    /// How often the aliases are re-read; `None`: only on [`Server::request_refresh`] (SIGHUP).
    pub alias_poll: Option<Duration>,
    /// Whether `GET /health` needs the key; `None` reads the environment file of the env the
    /// outputs belong to (`build/<env>/outputs.json`).
    pub health_requires_api_key: Option<bool>,
    /// The browser origins the environment allows (`api.cors_allow_origins`); non-empty gives
    /// every path a keyless `OPTIONS` and the functions `CORS_ALLOW_ORIGINS`, as Terraform
    /// does. `None` reads the environment file, like `health_requires_api_key`.
    pub cors_allow_origins: Option<Vec<String>>,
    /// Fire every declared schedule at this period instead of its own expression (to watch a
    /// daily job work without waiting a day); `None`: each on its own clock.
    pub schedule_every: Option<Duration>,
}

impl Options {
    /// Defaults for everything but the three required inputs.
    pub fn new(outputs: PathBuf, dist: PathBuf, endpoint: String) -> Options {
        Options {
            outputs,
            dist,
            endpoint,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            state: None,
            work_dir: None,
            watch_dir: None,
            integration_timeout: DEFAULT_INTEGRATION_TIMEOUT,
            max_instances: 4,
            alias_poll: Some(DEFAULT_ALIAS_POLL),
            health_requires_api_key: None,
            cors_allow_origins: None,
            schedule_every: None,
        }
    }
}

/// A running local API; dropping it (or [`Server::shutdown`]) stops every function process.
pub struct Server {
    addr: SocketAddr,
    url: String,
    gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    refresher: Option<JoinHandle<()>>,
    /// The queue pollers and schedule clocks: the local event sources.
    triggers: Vec<JoinHandle<()>>,
    refresh: Arc<Notify>,
    routing_file: Option<PathBuf>,
    state: Option<PathBuf>,
}

impl Server {
    /// Reads the deployment and each function's alias, fetches the code and configuration of
    /// every version in play (or extracts the `build/dist` fallback), writes `routing.json` and
    /// starts listening. Function processes start lazily, on their first request, like Lambda.
    pub async fn start(options: Options) -> Result<Server> {
        let mut deployment = Deployment::load(&options.outputs)?;
        let outputs_dir = options
            .outputs
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let work = options
            .work_dir
            .clone()
            .unwrap_or_else(|| outputs_dir.join("functions"));
        let watch_dir = options
            .watch_dir
            .clone()
            .unwrap_or_else(|| outputs_dir.join("watch"));
        let environment = match (options.health_requires_api_key, &options.cors_allow_origins) {
            (Some(_), Some(_)) => None,
            _ => Some(environment_config(&options.outputs)?),
        };
        let health_requires_api_key = options.health_requires_api_key.unwrap_or_else(|| {
            environment
                .as_ref()
                .is_some_and(|c| c.api.health_requires_api_key)
        });
        deployment.cors_allow_origins = match &options.cors_allow_origins {
            Some(origins) => origins.clone(),
            None => environment
                .map(|c| c.api.cors_allow_origins)
                .unwrap_or_default(),
        };
        let cors = !deployment.cors_allow_origins.is_empty();

        let emulator = Emulator::new(deployment.clone(), &options.endpoint, &work, &options.dist);
        let table = Arc::new(Table::default());
        let refresher = Refresher::start(
            emulator,
            table.clone(),
            &work,
            &options.dist,
            &watch_dir,
            &options.endpoint,
            options.max_instances,
        )
        .await?;
        let routing_file = refresher.routing_file().to_path_buf();
        // The functions something else invokes: queues and schedules, as Lambda's event source
        // mappings and EventBridge Scheduler would, through the same routing.
        let mut triggers = crate::queues::spawn(
            crate::queues::Source::all(&deployment),
            table.clone(),
            crate::queues::Clients::new(&options.endpoint, &deployment.region),
            &deployment.region,
        );
        triggers.extend(crate::schedules::spawn(
            &deployment,
            table.clone(),
            options.schedule_every,
        ));

        let listener = TcpListener::bind((options.host, options.port))
            .await
            .with_context(|| format!("binding {}:{}", options.host, options.port))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}/{}", deployment.stage);
        let gateway = Arc::new(Gateway {
            limits: Limits::new(deployment.clients.clone()),
            deployment,
            routes: table,
            health_requires_api_key,
            cors,
            integration_timeout: options.integration_timeout,
        });

        if let Some(state) = &options.state {
            ApiState {
                pid: std::process::id(),
                port: addr.port(),
                url: url.clone(),
                routing: Some(std::path::absolute(&routing_file).unwrap_or(routing_file.clone())),
            }
            .write(state)
            .with_context(|| format!("writing {}", state.display()))?;
        }

        // Nothing fails from here on: the refresher runs as long as the server.
        let refresh = Arc::new(Notify::new());
        let refresher = tokio::spawn(refresher.run(options.alias_poll, refresh.clone()));
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let serving = gateway.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(_) => { tokio::time::sleep(Duration::from_millis(10)).await; continue }
                    },
                    _ = &mut stop_rx => break,
                };
                let gateway = serving.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let gateway = gateway.clone();
                        async move { Ok::<_, std::convert::Infallible>(gateway.handle(peer, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(Server {
            addr,
            url,
            gateway,
            stop: Some(stop_tx),
            task: Some(task),
            refresher: Some(refresher),
            triggers,
            refresh,
            routing_file: Some(routing_file),
            state: options.state,
        })
    }

    /// The invoke URL including the stage, like the `api_url` output.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Re-reads the aliases now instead of at the next poll (what `SIGHUP` does to the binary);
    /// `routing.json` shows when a change is in use.
    pub fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// `<work dir>/routing.json`: the alias state being served (see [`crate::traffic`]).
    pub fn routing_file(&self) -> &std::path::Path {
        self.routing_file
            .as_deref()
            .expect("set until the server stops")
    }

    /// Stops accepting, kills every function process and removes the state file.
    pub async fn shutdown(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        for task in self
            .refresher
            .take()
            .into_iter()
            .chain(self.triggers.drain(..))
        {
            task.abort();
            let _ = task.await;
        }
        for pool in self.gateway.routes.pools() {
            pool.clear().await;
        }
        self.remove_files();
    }

    fn remove_files(&mut self) {
        for file in [self.state.take(), self.routing_file.take()]
            .into_iter()
            .flatten()
        {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in [self.task.take(), self.refresher.take()]
            .into_iter()
            .flatten()
            .chain(self.triggers.drain(..))
        {
            task.abort();
        }
        self.remove_files();
    }
}

/// `build/<env>/outputs.json` belongs to environment `<env>`, and
/// `build/<env>/stages/<stage>/outputs.json` to a stage of it; the environment's file decides
/// about /health and CORS (a stage differs from it only in names).
fn environment_config(outputs: &std::path::Path) -> Result<infra::Config> {
    let folder = outputs.parent();
    let staged = folder.and_then(|d| d.parent()).filter(|d| {
        d.file_name().and_then(|n| n.to_str()) == Some(infra::constructs::state::STAGES_DIR)
    });
    let env = match staged {
        Some(stages) => stages.parent(),
        None => folder,
    }
    .and_then(|d| d.file_name())
    .and_then(|n| n.to_str())
    .with_context(|| {
        format!(
            "cannot tell the environment from {}; pass --health-api-key and --cors-allow-origins",
            outputs.display()
        )
    })?;
    infra::load_config(env).with_context(|| {
        format!("reading environment `{env}` (named by the folder of {}); pass --health-api-key and --cors-allow-origins to skip", outputs.display())
    })
}
