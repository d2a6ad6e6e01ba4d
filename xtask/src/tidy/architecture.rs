//! Every "Architecture invariant" of `ARCHITECTURE.md` names the test that holds it, as
//! `` `path/to/file.rs::test_name` ``, and that test exists: an invariant nothing checks is a
//! wish, and a renamed test must not leave the document pointing at nothing.

use std::path::Path;

const MARK: &str = "**Architecture invariant:**";

#[test]
fn every_invariant_names_the_test_that_holds_it() {
    let root = deploy_files::workspace_root();
    let document =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("reading ARCHITECTURE.md");
    let problems = violations(&root, &document);
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md's invariants and their tests disagree:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn an_invariant_without_a_test_or_with_a_missing_one_is_caught() {
    let root = deploy_files::workspace_root();
    let document = format!(
        "{MARK} held (`xtask/src/tidy/architecture.rs::{}`).\n\n\
         {MARK} a wish.\nStill the wish.\n\
         {MARK} gone (`xtask/src/tidy/architecture.rs::no_such_test`, `nowhere.rs::t`).\n",
        "an_invariant_without_a_test_or_with_a_missing_one_is_caught"
    );
    assert_eq!(
        violations(&root, &document),
        [
            "line 3: the invariant names no test (`path/to/file.rs::test_name`): a wish.\nStill the wish.",
            "line 5: `xtask/src/tidy/architecture.rs::no_such_test` is no test",
            "line 5: `nowhere.rs::t` is no test",
        ]
    );
}

/// Each invariant (its line number and text, up to a blank line or the next invariant).
fn invariants(document: &str) -> Vec<(usize, String)> {
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (i, line) in document.lines().enumerate() {
        if let Some(rest) = line.strip_prefix(MARK) {
            found.push((i + 1, rest.trim().to_owned()));
            open = true;
        } else if line.trim().is_empty() || line.starts_with('#') || line.starts_with("- ") {
            open = false;
        } else if open && let Some((_, text)) = found.last_mut() {
            text.push('\n');
            text.push_str(line);
        }
    }
    found
}

/// What is wrong, one line each.
fn violations(root: &Path, document: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (line, text) in invariants(document) {
        // Code spans are the odd pieces between backticks.
        let tests: Vec<&str> = text
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|span| span.contains(".rs::"))
            .collect();
        if tests.is_empty() {
            problems.push(format!(
                "line {line}: the invariant names no test (`path/to/file.rs::test_name`): {text}"
            ));
        }
        for test in tests {
            let (file, name) = test.split_once("::").expect("filtered on `::`");
            if !is_test(&root.join(file), name) {
                problems.push(format!("line {line}: `{test}` is no test"));
            }
        }
    }
    problems
}

/// Whether `file` has a function `name` marked as a test (`#[test]`, `#[tokio::test]`, ...)
/// among the attributes just above it.
fn is_test(file: &Path, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let declares = |line: &str| {
        ["fn ", "async fn "]
            .iter()
            .any(|prefix| line.starts_with(&format!("{prefix}{name}(")))
    };
    lines.iter().enumerate().any(|(i, line)| {
        declares(line)
            && lines[..i]
                .iter()
                .rev()
                .take_while(|above| above.starts_with("#[") || above.starts_with("///"))
                .any(|attribute| attribute.starts_with("#[") && attribute.contains("test"))
    })
}
