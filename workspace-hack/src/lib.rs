//! No code: this crate exists for its manifest. Every member has it as a dev-dependency, so a
//! test build of any set of members resolves each dependency with the features the whole
//! workspace's build gives it, and reuses that build's artifacts (the root `Cargo.toml`).
