//! Helpers shared by the xtask integration tests: run the real `xtask`
//! binary with a private build folder, so a test never touches the
//! developer's `build/` (state, emulator, packages).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use deploy_files::workspace_root;

/// A fresh folder under `build/` (ignored by git) for one test.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = workspace_root()
        .join("build")
        .join("xtask-tests")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `xtask ARGS` with `build_dir` as its build folder.
pub fn xtask(build_dir: &Path, args: &[&str]) -> Output {
    xtask_with(build_dir, args, |_| {})
}

pub fn xtask_with(build_dir: &Path, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .env("XTASK_BUILD_DIR", build_dir)
        .env_remove("XTASK_ENV")
        .current_dir(workspace_root());
    adjust(&mut command);
    let output = command.output().expect("xtask runs");
    eprintln!(
        "--- xtask {} -> {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn stdout_json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "xtask failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `curl` an API (the local API server) with `key`: `(status, body)`, the body `null` when it
/// is not JSON.
pub fn api_call(
    url: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-w", "\n%{http_code}", "-X", method, "-H"])
        .arg(format!("x-api-key: {key}"));
    if let Some(body) = body {
        curl.args(["-H", "content-type: application/json", "--data", body]);
    }
    let output = curl.arg(format!("{url}{path}")).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or_default(),
    )
}

/// Copies of a small host executable named like the functions: enough
/// for packaging and ELF checks without a release build.
pub fn small_binaries(dir: &Path) -> PathBuf {
    let bins = dir.join("bins");
    std::fs::create_dir_all(&bins).unwrap();
    for name in FUNCTIONS.iter() {
        std::fs::copy("/bin/true", bins.join(name)).unwrap();
    }
    bins
}

/// The functions, as their crates declare them.
pub use catalog::NAMES as FUNCTIONS;

/// A private copy (tests modify them) of the functions' release binaries,
/// built once and shared through the target dir (`.ci/run` builds them
/// before the tests). `XTASK_TEST_BINARIES` points at another folder of
/// binaries named health, users, sessions.
pub fn release_binaries(dir: &Path) -> PathBuf {
    let source = match std::env::var_os("XTASK_TEST_BINARIES") {
        Some(d) => PathBuf::from(d),
        None => {
            // Where cargo puts them: CARGO_TARGET_DIR when the caller moved the target dir.
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            let release = target.join("release");
            if !FUNCTIONS.iter().all(|f| release.join(f).exists()) {
                let status = emulator::cargo()
                    .args(["build", "--release"])
                    .args(FUNCTIONS.iter().flat_map(|f| ["-p", *f]))
                    .current_dir(workspace_root())
                    .status()
                    .unwrap();
                assert!(status.success(), "release build of the functions failed");
            }
            release
        }
    };
    let bins = dir.join("bins");
    std::fs::create_dir_all(&bins).unwrap();
    for f in FUNCTIONS.iter() {
        std::fs::copy(source.join(f), bins.join(f)).unwrap();
    }
    bins
}

/// Appends bytes to a binary: a new build with the same behaviour.
pub fn rebuild(binary: &Path, marker: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(binary)
        .unwrap();
    file.write_all(format!("\0{marker}\0").as_bytes()).unwrap();
}

/// Stops the test's emulator however the test ends.
pub struct Down(pub PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = xtask(&self.0, &["local", "down"]);
    }
}

/// Runs `f` with the SDK configuration of the emulator at `endpoint`, from a synchronous test.
pub fn with_aws<T>(endpoint: &str, f: impl AsyncFnOnce(aws_config::SdkConfig) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .load()
                .await;
            f(config).await
        })
}

/// Runs `f` with a Lambda client for the emulator at `endpoint`.
pub fn with_lambda<T>(endpoint: &str, f: impl AsyncFnOnce(aws_sdk_lambda::Client) -> T) -> T {
    with_aws(endpoint, async |config| {
        f(aws_sdk_lambda::Client::new(&config)).await
    })
}

/// The version the `live` alias of `prod-service-<function>` serves.
pub fn live_version(endpoint: &str, function: &str) -> String {
    with_lambda(endpoint, async |lambda| {
        let alias = lambda
            .get_alias()
            .function_name(format!("prod-service-{function}"))
            .name("live")
            .send()
            .await
            .unwrap();
        assert!(
            alias
                .routing_config()
                .and_then(|r| r.additional_version_weights())
                .is_none_or(|w| w.is_empty()),
            "no routing weights on {function}'s alias"
        );
        alias.function_version().unwrap().to_owned()
    })
}

/// Each stack's Terraform commands of the last deploy under `dir` shared one AWS provider
/// process (its log, `local/logs/terraform-<stack>-provider.log`, names it on a line
/// `xtask: provider pid N`), and none of them outlived the deploy.
pub fn shared_providers_stopped(dir: &Path) {
    for stack in ["bootstrap", "service"] {
        let log = dir.join(format!("local/logs/terraform-{stack}-provider.log"));
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let pid = text
            .lines()
            .find_map(|line| line.strip_prefix("xtask: provider pid "))
            .unwrap_or_else(|| panic!("{} does not name its process:\n{text}", log.display()));
        assert!(
            !Path::new("/proc").join(pid).exists(),
            "the {stack} stack's provider process {pid} outlived the deploy"
        );
    }
}
