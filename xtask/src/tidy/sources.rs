//! Rules over the workspace's source text, where the compiler cannot see them:
//!
//! - nothing names a function but the catalog: no production source outside the function's
//!   own crate (`functions/<name>/`) and `functions/catalog/` spells a function's name as a
//!   string literal, so `cargo xtask new` and `remove` need no edit anywhere else;
//! - only `store/` builds DynamoDB requests: the functions' handlers call stores.
//!
//! Test code (`tests/`, `benches/`, `#[cfg(test)]` items and modules) is not read: tests are
//! about this service's own functions and tables, and say so by name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Production files that name a function, with why.
const MAY_NAME_A_FUNCTION: &[(&str, &str)] = &[(
    "smoke/src/steps.rs",
    "the smoke run proves this service's API route by route; a step is named after what it proves",
)];

/// The DynamoDB client's request builders.
const DYNAMODB_REQUESTS: [&str; 14] = [
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
    "describe_table",
    "execute_statement",
    "batch_execute_statement",
    "execute_transaction",
];

/// Files outside `functions/common/src/store/` that build DynamoDB requests, with why.
const MAY_CALL_DYNAMODB: &[(&str, &str)] = &[
    (
        "functions/health/src/check.rs",
        "`?deep=true` describes the tables to prove they are reachable: no item, so no store",
    ),
    (
        "functions/common/src/testing.rs",
        "test support (feature `test-tables`): creates and reads the tables a test runs against",
    ),
];

#[test]
fn nothing_names_a_function_but_the_catalog() {
    let root = deploy_files::workspace_root();
    let mut problems = Vec::new();
    for (file, text) in production_sources(&root) {
        let own_crate = catalog::NAMES
            .iter()
            .any(|name| file.starts_with(&format!("functions/{name}/")));
        if own_crate
            || file.starts_with("functions/catalog/")
            || MAY_NAME_A_FUNCTION.iter().any(|(f, _)| *f == file)
        {
            continue;
        }
        problems.extend(
            names_a_function(&text)
                .into_iter()
                .map(|(line, name)| format!("{file}:{line} names the function \"{name}\"")),
        );
    }
    assert!(
        problems.is_empty(),
        "only the catalog names the functions (iterate `catalog::FUNCTIONS`, or pick one by \
         what it declares):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn only_the_stores_build_dynamodb_requests() {
    let root = deploy_files::workspace_root();
    let mut problems = Vec::new();
    for (file, text) in production_sources(&root) {
        if !file.starts_with("functions/")
            || file.starts_with("functions/common/src/store/")
            || MAY_CALL_DYNAMODB.iter().any(|(f, _)| *f == file)
        {
            continue;
        }
        for (line, code) in production_lines(&text) {
            for request in DYNAMODB_REQUESTS {
                if code.contains(&format!(".{request}()")) {
                    problems.push(format!("{file}:{line} builds a DynamoDB `{request}`"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "only `functions/common/src/store/` builds DynamoDB requests; handlers call stores:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_rules_read_code_not_tests_or_comments() {
    let text = "//! \"health\" in a module doc\n\
                fn f() { call(\"users\"); } // \"sessions\"\n\
                #[cfg(test)]\n\
                use x::\"health\";\n\
                fn g() { \"/users\"; \"sessions\" }\n\
                #[cfg(test)]\n\
                mod tests {\n    fn t() { \"users\" }\n}\n\
                fn h() { x.query() }\n";
    let names: Vec<(usize, &str)> = names_a_function(text);
    assert_eq!(names, [(2, "users"), (5, "sessions")]);
    let lines: Vec<usize> = production_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [2, 5, 10]);
}

/// The string literals in `text`'s code that are a function's name, by line number.
fn names_a_function(text: &str) -> Vec<(usize, &'static str)> {
    production_lines(text)
        .into_iter()
        .flat_map(|(line, code)| {
            catalog::NAMES
                .iter()
                .filter(move |name| code.contains(&format!("\"{name}\"")))
                .map(move |name| (line, *name))
        })
        .collect()
}

/// `text`'s lines of code (1-based numbers), without comments and without the items and
/// modules marked `#[cfg(test)]`.
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut all = text.lines().enumerate();
    while let Some((i, line)) = all.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // The item it marks: one line, or a module up to its closing brace.
            if let Some((_, item)) = all.next()
                && item.trim_end().ends_with('{')
            {
                let indent = item.len() - item.trim_start().len();
                for (_, rest) in all.by_ref() {
                    if rest.len() - rest.trim_start().len() == indent && rest.trim() == "}" {
                        break;
                    }
                }
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split(" //").next().unwrap_or(line);
        lines.push((i + 1, code));
    }
    lines
}

/// Every production `.rs` file of the workspace's members (each member's `src/` and
/// `build.rs`; not `tests/`, `benches/` or `examples/`), by path relative to the root, with
/// its text. A module that its parent declares under `#[cfg(test)]` is test code too.
fn production_sources(root: &Path) -> Vec<(String, String)> {
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .expect("the root Cargo.toml")
        .parse()
        .expect("the root Cargo.toml is TOML");
    let mut files: Vec<PathBuf> = Vec::new();
    for member in manifest["workspace"]["members"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let dir = root.join(member.as_str().expect("a member is a path"));
        files.extend(
            walkdir::WalkDir::new(dir.join("src"))
                .into_iter()
                .filter_map(Result::ok)
                .map(|e| e.into_path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs")),
        );
        files.push(dir.join("build.rs"));
    }
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .filter_map(|path| Some((std::fs::read_to_string(&path).ok()?, path)))
        .map(|(text, path)| (path, text))
        .collect();
    let test_only: BTreeSet<PathBuf> = texts
        .iter()
        .flat_map(|(path, text)| test_modules(path, text))
        .collect();
    texts
        .into_iter()
        .filter(|(path, _)| !test_only.iter().any(|t| path.starts_with(t)))
        .map(|(path, text)| {
            let relative = path.strip_prefix(root).expect("under the root");
            (relative.to_string_lossy().into_owned(), text)
        })
        .collect()
}

/// The files and folders of the modules `text` (the file at `path`) declares under
/// `#[cfg(test)]` (`#[cfg(test)] mod tidy;` -> `tidy.rs` and `tidy/`).
fn test_modules(path: &Path, text: &str) -> Vec<PathBuf> {
    let dir = match path.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") => path.parent().expect("a file has a folder").to_path_buf(),
        _ => path.with_extension(""),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| pair[1].strip_prefix("mod ")?.strip_suffix(';'))
        .flat_map(|name| [dir.join(format!("{name}.rs")), dir.join(name)])
        .collect()
}
