//! The local server follows the `live` alias in the emulator: the version it names (and the
//! weights of its routing configuration) decide which package and configuration serve each
//! request, and a moved alias is picked up on SIGHUP or by polling, with `routing.json`
//! recording what is served.
//!
//! Everything is real: moto over HTTP (the shared test emulator or a private one), a function
//! with two published versions whose packages are different zips in an S3 bucket, and this
//! crate's `echo_lambda` example as the binary of both (it reports its environment, process id
//! and executable path, so each answer says which version's package and configuration ran).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::{AliasRoutingConfiguration, Environment, FunctionCode, Runtime};
use deploy_files::Outputs;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const KEY: &str = "versions-api-key-0123456789";
/// The artifacts bucket an outputs file names when the packages are nowhere to be had.
const MISSING_BUCKET: &str = "no-such-bucket";
/// Generous: the first request after a move may download a 50 MB debug package into moto's
/// loopback S3 and start a debug binary on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(120);

/// A function `<prefix>users` in moto with versions 1 and 2 (different packages and a
/// different `MARKER` variable) and an alias `live` on version 1; `health` and `sessions` exist
/// only as `build/dist` zips, so they run the fallback.
struct Fixture {
    _emulator: emulator::Emulator,
    endpoint: String,
    dir: PathBuf,
    lambda: aws_sdk_lambda::Client,
    function: String,
    bucket: String,
    /// SHA-256 (hex) of the package of version 1 and 2.
    sha: [String; 2],
    /// The package zips of version 1 and 2.
    zips: [Vec<u8>; 2],
    prefix: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    async fn new(name: &str) -> Fixture {
        let emulator = emulator::Emulator::for_tests().expect("an emulator");
        let endpoint = emulator.endpoint().to_string();
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let prefix = format!("{name}{id}-");
        let dir = support::scratch(name);

        let creds = aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "test");
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_lambda::config::Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(creds.clone())
                .build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(creds)
                .force_path_style(true)
                .build(),
        );

        // Two packages of the same binary that differ as zips (version 2 carries a marker
        // file), so each has its own content hash, key and cache folder.
        let echo = std::fs::read(support::example("echo_lambda")).expect("echo_lambda");
        let zips = [package(&echo, None), package(&echo, Some("2"))];
        let sha = [hex(&zips[0]), hex(&zips[1])];
        let bucket = format!("{prefix}artifacts");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        for (zip, sha) in zips.iter().zip(&sha) {
            s3.put_object()
                .bucket(&bucket)
                .key(format!("functions/users/{sha}.zip"))
                .body(zip.clone().into())
                .send()
                .await
                .unwrap();
        }

        let role = create_role(&endpoint, &format!("{prefix}role")).await;
        let function = format!("{prefix}users");
        let created = lambda
            .create_function()
            .function_name(&function)
            .runtime(Runtime::Providedal2023)
            .handler("bootstrap")
            .role(&role)
            .timeout(30)
            .memory_size(256)
            .code(
                FunctionCode::builder()
                    .s3_bucket(&bucket)
                    .s3_key(format!("functions/users/{}.zip", sha[0]))
                    .build(),
            )
            .environment(marker("v1"))
            .publish(true)
            .send()
            .await
            .unwrap();
        assert_eq!(created.version(), Some("1"));
        lambda
            .update_function_code()
            .function_name(&function)
            .s3_bucket(&bucket)
            .s3_key(format!("functions/users/{}.zip", sha[1]))
            .send()
            .await
            .unwrap();
        lambda
            .update_function_configuration()
            .function_name(&function)
            .environment(marker("v2"))
            .send()
            .await
            .unwrap();
        let published = lambda
            .publish_version()
            .function_name(&function)
            .send()
            .await
            .unwrap();
        assert_eq!(published.version(), Some("2"));
        lambda
            .create_alias()
            .function_name(&function)
            .name("live")
            .function_version("1")
            .send()
            .await
            .unwrap();

        let dist = dir.join("dist");
        let echo_path = support::example("echo_lambda");
        support::zip_bootstrap(&dist, "health", &echo_path);
        support::zip_bootstrap(&dist, "sessions", &echo_path);
        for f in catalog::FUNCTIONS.iter().filter(|f| f.routes.is_empty()) {
            // No route reaches them, but the server follows every function's alias.
            support::zip_bootstrap(&dist, f.name, &echo_path);
        }

        Fixture {
            _emulator: emulator,
            endpoint,
            dir,
            lambda,
            function,
            bucket,
            sha,
            zips,
            prefix,
        }
    }

    /// The outputs file, naming the artifacts bucket or, without `with_bucket`, one that does
    /// not exist.
    fn outputs(&self, with_bucket: bool) -> PathBuf {
        let path = self.dir.join("outputs.json");
        let mut outputs = Outputs::fixture(&self.prefix, "v1", KEY);
        outputs.artifacts_bucket = if with_bucket {
            self.bucket.clone()
        } else {
            format!("{}{MISSING_BUCKET}", self.prefix)
        };
        outputs.write(&path).unwrap();
        path
    }

    /// Points `live` at `version`, with these additional weights (`Some(&[])` clears them).
    async fn move_alias(&self, version: &str, weights: Option<&[(&str, f64)]>) {
        let routing = weights.map(|weights| {
            AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(
                    weights
                        .iter()
                        .map(|(v, w)| (v.to_string(), *w))
                        .collect::<HashMap<_, _>>(),
                ))
                .build()
        });
        self.lambda
            .update_alias()
            .function_name(&self.function)
            .name("live")
            .function_version(version)
            .set_routing_config(routing)
            .send()
            .await
            .unwrap();
    }
}

fn marker(value: &str) -> Environment {
    Environment::builder()
        .variables("MARKER", value)
        .variables("USERS_TABLE", "unused")
        .build()
}

/// A deployment zip: `bootstrap` (stored, mode 755) and optionally a `VERSION` file.
fn package(binary: &[u8], version_file: Option<&str>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(binary).unwrap();
    if let Some(text) = version_file {
        zip.start_file("VERSION", options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// moto checks that a function's role exists; IAM is a query API, so a form POST does it
/// (moto routes by the credential scope of the authorization header and does not check it).
async fn create_role(endpoint: &str, name: &str) -> String {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    });
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &policy.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_success(), "CreateRole: {status} {body}");
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// What one echo answer says about who served it.
#[derive(Debug)]
struct Served {
    version: String,
    marker: String,
    exe: String,
    pid: u64,
    arn: String,
}

async fn call(http: &reqwest::Client, url: &str) -> Served {
    let response = http
        .get(format!("{url}/users/who"))
        .header("x-api-key", KEY)
        .send()
        .await
        .expect("a response");
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Served {
        version: text(&echoed["env"]["AWS_LAMBDA_FUNCTION_VERSION"]),
        marker: text(&echoed["env"]["MARKER"]),
        exe: text(&echoed["exe"]),
        pid: echoed["pid"].as_u64().unwrap(),
        arn: text(&echoed["function_arn"]),
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Polls `routing.json` until `done` holds for it; panics with the last content after `WAIT`.
async fn wait_for_routing(path: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let routing = read_json(path);
        if let Some(routing) = &routing
            && done(routing)
        {
            return routing.clone();
        }
        assert!(
            started.elapsed() < WAIT,
            "routing.json never showed {what}: {routing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn weights(routing: &Value, function: &str) -> BTreeMap<String, f64> {
    serde_json::from_value(routing["functions"][function]["weights"].clone()).unwrap()
}

fn generation(routing: &Value) -> u64 {
    routing["generation"].as_u64().expect("a generation")
}

fn alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// The `local-api` binary with polling off: only SIGHUP makes it re-read the alias. Its access
/// log (stdout) is collected in the background.
struct Binary {
    child: Child,
    url: String,
    routing: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    fn start(fixture: &Fixture) -> Binary {
        let state = fixture.dir.join("local-api.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_local-api"))
            .arg("--outputs")
            .arg(fixture.outputs(true))
            .arg("--dist")
            .arg(fixture.dir.join("dist"))
            .arg("--work-dir")
            .arg(fixture.dir.join("work"))
            .args(["--endpoint", &fixture.endpoint])
            .args(["--alias-poll-ms", "0", "--health-api-key", "open"])
            .args(["--cors-allow-origins", ""])
            .arg("--state")
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting local-api");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        let started = Instant::now();
        let record = loop {
            if let Some(record) = read_json(&state)
                && record["pid"] == child.id()
            {
                break record;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("local-api exited at start: {status}");
            }
            assert!(started.elapsed() < WAIT, "no state file");
            std::thread::sleep(Duration::from_millis(50));
        };
        Binary {
            url: record["url"].as_str().unwrap().to_string(),
            routing: PathBuf::from(record["routing"].as_str().expect("the routing file")),
            child,
            log,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_the_alias_version_and_weights_on_sighup() {
    let fixture = Fixture::new("versions").await;
    let mut binary = Binary::start(&fixture);
    let http = reqwest::Client::new();

    // Start-up: version 1 from the bucket (moto reports version 2's key for version 1, see
    // `local_api::alias`), the other functions on the build/dist fallback.
    let routing = read_json(&binary.routing).expect("routing.json exists once listening");
    assert_eq!(routing["pid"], binary.child.id());
    assert_eq!(routing["alias"], "live");
    assert_eq!(routing["functions"]["users"]["version"], "1", "{routing}");
    assert!(weights(&routing, "users").is_empty());
    assert!(routing["functions"]["health"]["version"].is_null());
    assert!(routing["functions"]["health"]["fallback"].is_string());
    let first_generation = generation(&routing);

    let v1 = call(&http, &binary.url).await;
    assert_eq!((v1.version.as_str(), v1.marker.as_str()), ("1", "v1"));
    assert!(v1.exe.contains(&fixture.sha[0]), "{v1:?}");
    assert_eq!(
        v1.arn,
        format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}:live",
            fixture.function
        )
    );
    let health = http
        .get(format!("{}/health", binary.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the fallback functions still serve");

    // All at once to version 2.
    fixture.move_alias("2", None).await;
    signal(&binary.child, "HUP");
    let routing = wait_for_routing(&binary.routing, "version 2", |r| {
        r["functions"]["users"]["version"] == "2"
    })
    .await;
    assert!(generation(&routing) > first_generation);
    for _ in 0..3 {
        let served = call(&http, &binary.url).await;
        assert_eq!(
            (served.version.as_str(), served.marker.as_str()),
            ("2", "v2")
        );
        assert!(served.exe.contains(&fixture.sha[1]), "{served:?}");
    }
    // Version 1 left play: its idle process is gone.
    let started = Instant::now();
    while alive(v1.pid) {
        assert!(
            started.elapsed() < WAIT,
            "version 1's process {} still runs",
            v1.pid
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Canary: version 1 with half the requests to version 2.
    let before = generation(&routing);
    fixture.move_alias("1", Some(&[("2", 0.5)])).await;
    signal(&binary.child, "HUP");
    let routing = wait_for_routing(&binary.routing, "version 1 + 2 at 0.5", |r| {
        r["functions"]["users"]["version"] == "1" && weights(r, "users").get("2") == Some(&0.5)
    })
    .await;
    assert!(generation(&routing) > before);
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let served = call(&http, &binary.url).await;
        let expected_marker = format!("v{}", served.version);
        assert_eq!(
            served.marker, expected_marker,
            "configuration follows the version"
        );
        seen.insert(served.version);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["1".to_string(), "2".to_string()]),
        "both versions serve"
    );

    // Rolled back: version 1 only, no weights.
    fixture.move_alias("1", Some(&[])).await;
    signal(&binary.child, "HUP");
    wait_for_routing(&binary.routing, "version 1 alone", |r| {
        r["functions"]["users"]["version"] == "1" && weights(r, "users").is_empty()
    })
    .await;
    for _ in 0..10 {
        let served = call(&http, &binary.url).await;
        assert_eq!(
            (served.version.as_str(), served.marker.as_str()),
            ("1", "v1")
        );
    }

    // The access log says which version served each request.
    let started = Instant::now();
    loop {
        let versions: BTreeSet<String> = binary
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["resourcePath"] == "/users/{id}")
            .filter_map(|entry| entry["functionVersion"].as_str().map(str::to_string))
            .collect();
        if versions == BTreeSet::from(["1".to_string(), "2".to_string()]) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "access log versions: {versions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&binary.child, "TERM");
    let exit = binary.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!binary.routing.exists(), "routing.json is removed on stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_the_alias_and_reports_a_version_it_cannot_run() {
    let fixture = Fixture::new("polling").await;
    // No artifacts bucket: only a build/dist zip that is byte for byte version 1's package can
    // provide code.
    std::fs::write(fixture.dir.join("dist/users.zip"), &fixture.zips[0]).unwrap();
    let mut options = local_api::Options::new(
        fixture.outputs(false),
        fixture.dir.join("dist"),
        fixture.endpoint.clone(),
    );
    options.work_dir = Some(fixture.dir.join("work"));
    options.alias_poll = Some(Duration::from_millis(100));
    options.health_requires_api_key = Some(false);
    options.cors_allow_origins = Some(Vec::new());
    let server = local_api::Server::start(options).await.expect("starts");
    let http = reqwest::Client::new();
    let url = server.url().to_string();

    let routing = read_json(server.routing_file()).unwrap();
    assert_eq!(routing["functions"]["users"]["version"], "1", "{routing}");
    let served = call(&http, &url).await;
    assert_eq!(
        (served.version.as_str(), served.marker.as_str()),
        ("1", "v1")
    );
    assert!(served.exe.contains(&fixture.sha[0]), "{served:?}");

    // Version 2's package is nowhere to be had: the routing stays, and says why.
    fixture.move_alias("2", None).await;
    let routing = wait_for_routing(server.routing_file(), "a pending version 2", |r| {
        r["functions"]["users"]["pending"]["version"] == "2"
    })
    .await;
    assert_eq!(routing["functions"]["users"]["version"], "1");
    let error = routing["functions"]["users"]["pending"]["error"]
        .as_str()
        .unwrap();
    assert!(
        error.contains(MISSING_BUCKET) && error.contains(&fixture.sha[1]),
        "{error}"
    );
    let served = call(&http, &url).await;
    assert_eq!(served.version, "1");

    // Back to version 1 (no signal, no refresh call: the poll sees it).
    fixture.move_alias("1", None).await;
    wait_for_routing(server.routing_file(), "no pending version", |r| {
        r["functions"]["users"]["version"] == "1"
            && r["functions"]["users"].get("pending").is_none()
    })
    .await;
    let routing_file = server.routing_file().to_path_buf();
    server.shutdown().await;
    assert!(!routing_file.exists());
}
