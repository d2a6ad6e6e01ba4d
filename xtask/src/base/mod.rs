//! The base layer: what every service and command stands on (the environment and its
//! configuration, AWS clients, external processes and files, what the user sees). It imports
//! nothing from the layers above, so anything may use it.

pub mod aws;
pub mod env;
pub mod git;
pub mod process;
pub mod progress;
pub mod release_strategy;
pub mod signals;
