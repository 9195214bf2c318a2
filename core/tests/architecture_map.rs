//! docs/architecture.md's module maps name every file and directory of
//! `core/src` and `runtime-std/src`, and nothing that is not there.

use std::collections::BTreeSet;
use std::path::Path;

/// Names in backticks in the first column of the table rows that follow
/// `heading` (up to the next blank line after the table).
fn mapped(doc: &str, heading: &str) -> BTreeSet<String> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in doc[start..].lines().skip(1) {
        if line.starts_with('|') {
            in_table = true;
            let first = line.split('|').nth(1).unwrap_or_default();
            for part in first.split('`').skip(1).step_by(2) {
                names.insert(part.trim_end_matches('/').to_owned());
            }
        } else if in_table {
            break;
        }
    }
    names
}

fn listed(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn the_module_maps_match_the_trees() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    for (heading, dir) in [
        ("Module map (`ls core/src`", "core/src"),
        ("Module map (`ls runtime-std/src`)", "runtime-std/src"),
    ] {
        let names = mapped(&doc, heading);
        let files = listed(&root.join(dir));
        // A row may name several files (`main.rs`, `cli.rs`); directories
        // are written with a trailing slash, files with their extension.
        assert_eq!(names, files, "{dir}: the map and the tree differ");
    }
}
