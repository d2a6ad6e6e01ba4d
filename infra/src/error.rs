//! The crate's one error type: every failure says which file, key or path is at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", file.display())]
    Config { file: PathBuf, message: String },
    #[error("unknown environment {name:?}: there is no {}/{name}.toml (known: {})", dir.display(), crate::config::ENVIRONMENTS.join(", "))]
    UnknownEnvironment { name: String, dir: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("usage: {0}")]
    Usage(String),
}
