//! Parsing a TOML document into a [`Config`]: syntax errors, then unknown
//! keys and wrong types found one key at a time, each located by its span.

use serde::Deserialize;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::{Config, ConfigError, ConfigErrorKind, LoadError};

/// Where in the file an error is (both 1-based; the column counts
/// characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `source` (clamped to its end).
    pub fn of_offset(source: &str, offset: usize) -> Location {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = source.get(..offset).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before.get(line_start..).unwrap_or_default().chars().count() + 1,
        }
    }
}

impl Config {
    /// Parses and validates a TOML document. Returns every error found,
    /// each with its line and column.
    pub fn from_toml_str(source: &str) -> Result<Config, Vec<ConfigError>> {
        let (root, syntax) = DeTable::parse_recoverable(source);
        if !syntax.is_empty() {
            let whole = 0..source.len();
            // Recovery often reports a cascade on the same line: keep the
            // first error of each line.
            let mut errors: Vec<ConfigError> = Vec::new();
            for e in &syntax {
                let at = Location::of_offset(source, e.span().unwrap_or(whole.clone()).start);
                if errors
                    .iter()
                    .any(|seen| seen.location.is_some_and(|l| l.line == at.line))
                {
                    continue;
                }
                errors.push(ConfigError {
                    location: Some(at),
                    key: None,
                    kind: ConfigErrorKind::Syntax(e.message().to_owned()),
                });
            }
            return Err(errors);
        }

        let mut errors = Vec::new();
        let mut bad_paths = Vec::new();
        for (key, value) in root.get_ref().iter() {
            schema_errors(
                source,
                &mut vec![key.clone()],
                value,
                &mut errors,
                &mut bad_paths,
            );
        }

        // Check the values of the rest too, so one run reports everything:
        // without the bad keys the document deserializes.
        let mut pruned = root.clone();
        for path in &bad_paths {
            remove_path(pruned.get_mut(), path);
        }
        match Config::deserialize(toml::de::Deserializer::from(pruned)) {
            Ok(config) => {
                for p in config.problems() {
                    let span = locate(root.get_ref(), &p.key, p.at_key);
                    errors.push(ConfigError {
                        location: span.map(|s| Location::of_offset(source, s.start)),
                        key: Some(p.key.join(".")),
                        kind: p.kind,
                    });
                }
                if errors.is_empty() {
                    return Ok(config);
                }
            }
            // Not expected once every failing key is removed; report it
            // rather than pass a config that did not deserialize.
            Err(e) if errors.is_empty() => errors.push(ConfigError {
                location: e.span().map(|s| Location::of_offset(source, s.start)),
                key: None,
                kind: ConfigErrorKind::Schema(e.message().to_owned()),
            }),
            Err(_) => {}
        }
        sort_by_location(&mut errors);
        Err(errors)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let source = std::fs::read_to_string(path).map_err(|error| LoadError::Io {
            path: path.to_owned(),
            error,
        })?;
        Config::from_toml_str(&source).map_err(|errors| LoadError::Invalid {
            path: path.to_owned(),
            errors,
        })
    }
}

/// File order; errors without a location (none in practice) last.
fn sort_by_location(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| {
        e.location
            .map_or((usize::MAX, usize::MAX), |l| (l.line, l.column))
    });
}

/// Deserializes the document made of only `path = value` and records why it
/// fails; drills into tables so that each bad key gets its own error.
fn schema_errors<'i>(
    source: &str,
    path: &mut Vec<Spanned<DeString<'i>>>,
    value: &Spanned<DeValue<'i>>,
    errors: &mut Vec<ConfigError>,
    bad_paths: &mut Vec<Vec<String>>,
) {
    let Err(error) = Config::deserialize(toml::de::Deserializer::from(only(path, value))) else {
        return;
    };
    let before = errors.len();
    // Drill down only if the key itself is fine (the same key with an empty
    // table deserializes); otherwise the error is about this key.
    let empty = Spanned::new(value.span(), DeValue::Table(DeTable::new()));
    if let DeValue::Table(table) = value.get_ref()
        && path.len() < 4
        && Config::deserialize(toml::de::Deserializer::from(only(path, &empty))).is_ok()
    {
        for (key, inner) in table.iter() {
            path.push(key.clone());
            schema_errors(source, path, inner, errors, bad_paths);
            path.pop();
        }
    }
    if errors.len() == before {
        bad_paths.push(path.iter().map(|k| k.get_ref().to_string()).collect());
        let fallback = path.last().map_or(0, |k| k.span().start);
        let offset = error.span().map_or(fallback, |s| s.start);
        errors.push(ConfigError {
            location: Some(Location::of_offset(source, offset)),
            key: Some(
                path.iter()
                    .map(|k| k.get_ref().as_ref())
                    .collect::<Vec<&str>>()
                    .join("."),
            ),
            kind: ConfigErrorKind::Schema(error.message().to_owned()),
        });
    }
}

/// The document `{p0 = {p1 = {… = value}}}`, keeping the original spans.
fn only<'i>(path: &[Spanned<DeString<'i>>], value: &Spanned<DeValue<'i>>) -> Spanned<DeTable<'i>> {
    let mut inner = value.clone();
    for key in path.iter().skip(1).rev() {
        let mut table = DeTable::new();
        table.insert(key.clone(), inner);
        inner = Spanned::new(value.span(), DeValue::Table(table));
    }
    let mut root = DeTable::new();
    if let Some(first) = path.first() {
        root.insert(first.clone(), inner);
    }
    Spanned::new(value.span(), root)
}

/// Removes the entry at `path` (and nothing else) from `root`.
fn remove_path(root: &mut DeTable<'_>, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = root;
    for key in parents {
        match table.get_mut(key.as_str()).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => table = t,
            _ => return,
        }
    }
    table.remove(last.as_str());
}

/// The span of the value (or key) at `path` in the parsed document.
fn locate(root: &DeTable<'_>, path: &[String], at_key: bool) -> Option<Range<usize>> {
    let (last, parents) = path.split_last()?;
    let mut table = root;
    for key in parents {
        match table.get(key.as_str())?.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return None,
        }
    }
    let (key, value) = table.get_key_value(last.as_str())?;
    Some(if at_key { key.span() } else { value.span() })
}
