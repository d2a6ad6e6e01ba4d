//! Rules over xtask's own source, as ordinary tests (after rust-analyzer's `xtask/src/tidy.rs`):
//! the layering that lets a newcomer find their way (see `main.rs`) cannot rot silently.
//!
//! Every module's `crate::` paths (in `use` trees and inline) are read from the source text,
//! resolved to the module they name, and checked: a module imports only its own layer or the
//! layers below it, a command never imports another command, no modules import each other in a
//! circle, and every file opens with a `//!` line saying why it exists.
//!
//! Beside it, the rules over the whole workspace: `cargo` (the manifests), `sources` (what
//! the source text may name) and `architecture` (every invariant of `ARCHITECTURE.md` names
//! the test that holds it).

mod architecture;
mod cargo;
mod sources;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, highest first. A module may import its own layer or a lower one. The modules
/// outside them (`main`, `tidy`, `workflows`) sit above all of them.
const LAYERS: &[&str] = &["commands", "cli", "services", "base"];

#[test]
fn xtask_is_layered_and_documented() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&modules(&src));
    assert!(
        problems.is_empty(),
        "xtask's layering rules are broken:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn each_rule_catches_what_it_names() {
    let modules: BTreeMap<String, String> = [
        (
            "base::env",
            "//! env\nuse crate::services::deploy::Options;\n",
        ),
        (
            "services::deploy",
            "//! deploy\nuse crate::base::env::Env;\n",
        ),
        ("commands::plan", "//! plan\nuse crate::commands::deploy;\n"),
        (
            "commands::deploy",
            "//! deploy\nfn f() { crate::base::env::load(); }\n",
        ),
        (
            "services::a",
            "//! a\nuse crate::services::{b::{self, X}, deploy};\n",
        ),
        ("services::b", "//! b\nuse crate::services::a::Y;\n"),
        (
            "services::local",
            "/// not a module doc\nuse crate::base::env;\n",
        ),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_owned(), text.to_owned()))
    .collect();
    let problems = violations(&modules);
    let expect = [
        "base::env imports services::deploy, a higher layer",
        "commands::plan imports commands::deploy, another command",
        "base::env -> services::deploy -> base::env",
        "services::a -> services::b -> services::a",
        "services::local does not open with a `//!` line",
    ];
    for expected in expect {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected `{expected}` among {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn use_trees_expand_to_every_path() {
    let text = "use crate::base::{env::{self, Env}, process};\n\
                // crate::commands::deploy is only a comment\n\
                let x = crate::services::target::target(env);";
    assert_eq!(
        crate_paths(text),
        BTreeSet::from([
            "base::env::self".to_owned(),
            "base::env::Env".to_owned(),
            "base::process".to_owned(),
            "services::target::target".to_owned(),
        ])
    );
}

/// Every `.rs` file under `src`, by module path (`services::aliases::release`; `main` for
/// `main.rs`), with its text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(src)
        .into_iter()
        .map(|entry| entry.expect("reading xtask/src"))
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "rs"))
        .map(|entry| {
            let relative = entry.path().strip_prefix(src).expect("under src");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(entry.path()).expect("reading a source file");
            (parts.join("::"), text)
        })
        .collect()
}

/// What breaks the rules, one line each.
fn violations(modules: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (module, text) in modules {
        if !text.starts_with("//!") {
            problems.push(format!(
                "{module} does not open with a `//!` line saying why it exists"
            ));
        }
        let imported: BTreeSet<&str> = crate_paths(text)
            .iter()
            .filter_map(|path| resolve(modules, path))
            .filter(|target| target != module)
            .collect();
        for &target in &imported {
            if rank(target) < rank(module) {
                problems.push(format!("{module} imports {target}, a higher layer"));
            }
            if layer(module) == Some("commands")
                && layer(target) == Some("commands")
                && target != "commands"
            {
                problems.push(format!("{module} imports {target}, another command"));
            }
        }
        graph.insert(module, imported);
    }
    problems.extend(
        circles(&graph)
            .into_iter()
            .map(|circle| format!("modules import each other in a circle: {circle}")),
    );
    problems
}

fn layer(module: &str) -> Option<&str> {
    let first = module.split("::").next()?;
    LAYERS.iter().copied().find(|layer| *layer == first)
}

/// 0 for the modules above every layer, then 1 for the highest layer and so on down.
fn rank(module: &str) -> usize {
    layer(module).map_or(0, |layer| {
        1 + LAYERS
            .iter()
            .position(|l| *l == layer)
            .expect("a layer is listed")
    })
}

/// The module a path names: its longest prefix that is a module.
fn resolve<'a>(modules: &'a BTreeMap<String, String>, path: &str) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().find_map(|n| {
        modules
            .get_key_value(parts[..n].join("::").as_str())
            .map(|(name, _)| name.as_str())
    })
}

/// Every path after `crate::` in code (comments skipped), `use` trees expanded:
/// `crate::base::{env::{self, Env}, process}` gives `base::env::self`, `base::env::Env` and
/// `base::process`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut chars = rest.chars().peekable();
        use_tree(&mut chars, String::new(), &mut paths);
    }
    paths
}

/// Reads one use tree (`a::b`, `a::{b, c::d}`, `self`) after `prefix`.
fn use_tree(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    prefix: String,
    out: &mut BTreeSet<String>,
) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            use_tree(chars, prefix.clone(), out);
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some(',') => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                    if chars.peek() == Some(&'}') {
                        chars.next();
                        return;
                    }
                }
                _ => return,
            }
        }
    }
    let mut segment = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' || c == '*' {
            segment.push(c);
            chars.next();
        } else {
            break;
        }
    }
    if segment.is_empty() {
        return;
    }
    let path = if prefix.is_empty() {
        segment
    } else {
        format!("{prefix}::{segment}")
    };
    let mut ahead = chars.clone();
    if ahead.next() == Some(':') && ahead.next() == Some(':') {
        chars.next();
        chars.next();
        use_tree(chars, path, out);
    } else {
        out.insert(path);
    }
}

/// One circle per group of modules that reach each other, as `a -> b -> a` (the shortest
/// circle through the group's first module).
fn circles(graph: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let reach = |from: &str| -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(module) = todo.pop() {
            for &next in graph.get(module).into_iter().flatten() {
                if seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&str, BTreeSet<&str>> = graph
        .keys()
        .map(|&module| (module, reach(module)))
        .collect();
    let mut circles = Vec::new();
    let mut reported = BTreeSet::new();
    for (&start, from_start) in &reached {
        if reported.contains(start) || !from_start.contains(start) {
            continue;
        }
        let group: BTreeSet<&str> = from_start
            .iter()
            .copied()
            .filter(|m| reached[m].contains(start))
            .collect();
        reported.extend(group.iter().copied());
        // Breadth first from `start` inside the group, until an edge leads back to it.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(module) = queue.pop_front() {
            for &next in &graph[module] {
                if next == start {
                    let mut circle = vec![module];
                    let mut node = module;
                    while node != start {
                        node = came_from[node];
                        circle.push(node);
                    }
                    circle.reverse();
                    circle.push(start);
                    circles.push(circle.join(" -> "));
                    break 'search;
                }
                if group.contains(next) && next != start && !came_from.contains_key(next) {
                    came_from.insert(next, module);
                    queue.push_back(next);
                }
            }
        }
    }
    circles
}
