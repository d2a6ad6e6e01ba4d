//! Empty: cargo unifies the features of a package's build-dependencies (the `[build-dependencies]`
//! that hakari writes) only when the package has a build script.
fn main() {}
