//! What loading or validating a configuration reports.

use std::fmt;
use std::path::PathBuf;
use tern_core::scope_path::NameError;

use super::Location;

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The file is not valid TOML.
    Syntax(String),
    /// A key that does not exist, or a value of the wrong type (the
    /// deserializer's message).
    Schema(String),
    /// An app name that is not a valid scope segment.
    InvalidAppName { name: String, reason: NameError },
    /// `[apps]` configures no app at all.
    NoApps,
    /// A number outside its allowed range.
    OutOfRange { value: u64, min: u64, max: u64 },
    /// Any other invalid value.
    Invalid(String),
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::Syntax(m) => write!(f, "TOML syntax error: {m}"),
            ConfigErrorKind::Schema(m) => f.write_str(m),
            ConfigErrorKind::InvalidAppName { name, reason } => {
                write!(f, "invalid app name {name:?}: {reason}")
            }
            ConfigErrorKind::NoApps => f.write_str("at least one app must be configured"),
            ConfigErrorKind::OutOfRange { value, min, max } => {
                write!(
                    f,
                    "{value} is out of range: must be between {min} and {max}"
                )
            }
            ConfigErrorKind::Invalid(m) => f.write_str(m),
        }
    }
}

/// One problem with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where it is in the file; `None` for problems not from a file (for
    /// example an invalid CLI override).
    pub location: Option<Location>,
    /// Dotted key (`server.out_chunk_size`), when the error is about one.
    pub key: Option<String>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    /// The message without the location: `key: what is wrong`.
    pub fn message(&self) -> String {
        match &self.key {
            Some(key) => format!("{key}: {}", self.kind),
            None => self.kind.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.location {
            write!(f, "{}:{}: ", at.line, at.column)?;
        }
        f.write_str(&self.message())
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Config::load`](super::Config::load) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    Invalid {
        path: PathBuf,
        errors: Vec<ConfigError>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => {
                write!(f, "{}: cannot read: {error}", path.display())
            }
            LoadError::Invalid { path, errors } => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{}:{e}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { error, .. } => Some(error),
            LoadError::Invalid { .. } => None,
        }
    }
}
