//! The local API server's files: its state file ([`ApiState`]) and its routing record
//! ([`Routing`]), both read by xtask (and the state file by smoke) while the server runs.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{read, write};

/// The local API server's state file: where it listens and where its routing record is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiState {
    pub pid: u32,
    pub port: u16,
    /// Its invoke URL, stage included.
    pub url: String,
    /// Its `routing.json` (what it serves per alias); absent in files of older servers.
    #[serde(default)]
    pub routing: Option<PathBuf>,
}

impl ApiState {
    pub fn read(path: &Path) -> io::Result<ApiState> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }
}

/// `routing.json`: what each function's alias looked like at the server's last refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The server process that wrote it.
    pub pid: u32,
    /// Grows by one with every write of one process.
    pub generation: u64,
    /// The alias followed (`live`).
    pub alias: Option<String>,
    pub functions: BTreeMap<String, RoutedAlias>,
}

/// One function in [`Routing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutedAlias {
    pub function_name: String,
    /// The alias's primary version; `None` while the `build/dist` fallback runs.
    pub version: Option<String>,
    /// `AdditionalVersionWeights` as the alias gave them; the primary version gets the rest.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Why the fallback runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// An alias state the server could not apply yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingAlias>,
    /// The watch build served instead of the alias's code (`cargo xtask watch`).
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub watch_build: Option<WatchBuild>,
}

/// A `bootstrap` built by `cargo xtask watch` that the server runs for a function, with the
/// size and modification time it had when loaded, so `watch` can tell its newest build is the
/// one served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchBuild {
    pub bootstrap: PathBuf,
    pub bytes: u64,
    pub modified_ns: u128,
}

/// An alias state not applied yet, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAlias {
    pub version: Option<String>,
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    pub error: Option<String>,
}

impl Routing {
    pub fn read(path: &Path) -> io::Result<Routing> {
        read(path)
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        write(path, self)
    }
}
