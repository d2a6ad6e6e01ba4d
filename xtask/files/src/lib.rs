//! The files the deploy life cycle's processes hand each other, one serde type each, and the
//! names they live at, so the writer and every reader (and the tests that stand in for a
//! writer) agree by construction:
//!
//! - [`Outputs`], `build/<env>/outputs.json` ([`OUTPUTS_FILE`]): the service stack's outputs,
//!   written by xtask after a deploy, read by xtask, the local API server and smoke; infra
//!   names every output it declares from this type;
//! - [`ApiState`], the local API server's `--state` file (`build/<env>/local-api.json`,
//!   [`API_STATE_FILE`]): written by the server, read by xtask and by smoke;
//! - [`Routing`], the server's `routing.json` ([`ROUTING_FILE`]): written by the server, read
//!   by xtask when it waits for the server to follow an alias it moved (the contract is in
//!   `xtask/local-api/src/traffic.rs`).
//!
//! A crate of its own, apart from the emulator launcher, because infra, xtask, the local API
//! server and smoke all need these types and nothing else they share: it depends on serde and
//! the catalog only, so it sits below every one of them.

mod local_api;
pub mod outputs;

use std::io;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use local_api::{ApiState, PendingAlias, RoutedAlias, Routing, WatchBuild};
pub use outputs::{ApiClient, DeployedFunction, DeployedQueue, Outputs};

/// The service stack's outputs, in an environment's build folder (`build/<env>/`).
pub const OUTPUTS_FILE: &str = "outputs.json";

/// The names of the outputs Terraform marks `sensitive`, beside [`OUTPUTS_FILE`].
pub const SENSITIVE_OUTPUTS_FILE: &str = "sensitive-outputs.json";

/// The running local API server's [`ApiState`], beside [`OUTPUTS_FILE`], so whoever reads the
/// outputs of `local` finds the server that serves them.
pub const API_STATE_FILE: &str = "local-api.json";

/// The local API server's [`Routing`] record, in its work folder.
pub const ROUTING_FILE: &str = "routing.json";

/// The repository root (`XTASK_WORKSPACE_ROOT` when a binary built elsewhere runs in another
/// checkout): the catalog finds it, as it reads the functions' manifests there.
pub use catalog::workspace_root;

fn read<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

/// Opens the log file `path` (its folder created) for the output of a process that handles
/// secret values (moto, which holds them; the functions, which read them; terraform, whose
/// state holds the API key; cargo), readable by the owner only: created 0600, and an existing
/// file made 0600 before anything is written to it (the mode given at creation does not apply
/// to a file that exists, such as one an older version left 0644). `append`: keep what is
/// there (a function's log across its processes); else truncate (one log per run).
pub fn open_private_log(path: &Path, append: bool) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Pretty JSON and a newline, readable by the owner only (the outputs hold the API key),
/// through a temporary file and a rename so a reader never sees a partial file.
fn write<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)? + "\n";
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?
        .write_all(text.as_bytes())?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    /// A log is 0600 whether new or left wider by an older version; appending keeps its
    /// lines, truncating starts afresh.
    #[test]
    fn logs_are_private_new_or_existing() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("deploy-files-log-{}", std::process::id()));
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let path = dir.join("logs").join("moto.log");
        writeln!(open_private_log(&path, false).unwrap(), "one").unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        writeln!(open_private_log(&path, true).unwrap(), "two").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        writeln!(open_private_log(&path, false).unwrap(), "three").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The writer's and the readers' view of each file is one type: what is written reads
    /// back the same, from a file only its owner can read (the outputs hold the API keys).
    #[test]
    fn every_file_reads_back_what_it_wrote() {
        let dir = std::env::temp_dir().join(format!("deploy-files-{}", std::process::id()));
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

        let outputs = Outputs::fixture("p-", "v1", "the-key");
        let path = dir.join(OUTPUTS_FILE);
        outputs.write(&path).unwrap();
        assert_eq!(Outputs::read(&path).unwrap(), outputs);
        assert_eq!(mode(&path), 0o600);

        let state = ApiState {
            pid: 1,
            port: 2,
            url: "http://127.0.0.1:2/v1".into(),
            routing: Some(dir.join(ROUTING_FILE)),
        };
        let path = dir.join(API_STATE_FILE);
        state.write(&path).unwrap();
        assert_eq!(ApiState::read(&path).unwrap(), state);

        let routing = Routing {
            pid: 1,
            generation: 7,
            alias: Some("live".into()),
            functions: BTreeMap::from([(
                "f".to_owned(),
                RoutedAlias {
                    function_name: "p-f".into(),
                    version: Some("3".into()),
                    weights: BTreeMap::from([("4".to_owned(), 0.25)]),
                    fallback: None,
                    pending: Some(PendingAlias {
                        version: Some("5".into()),
                        weights: BTreeMap::new(),
                        error: Some("not yet".into()),
                    }),
                    watch_build: Some(WatchBuild {
                        bootstrap: dir.join("bootstrap"),
                        bytes: 9,
                        modified_ns: 10,
                    }),
                },
            )]),
        };
        let path = dir.join(ROUTING_FILE);
        routing.write(&path).unwrap();
        assert_eq!(Routing::read(&path).unwrap(), routing);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
