//! Artifacts: turning the function sources into the packages a stack deploys (compile, check
//! for Lambda's OS, zip, sign, upload), each step usable on its own by a command.

pub mod build;
pub mod check;
pub mod package;
pub mod sign;
pub mod upload;
