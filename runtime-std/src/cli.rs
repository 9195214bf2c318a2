//! The `tern` command line.
//!
//! ```text
//! tern                                   serve with built-in defaults
//! tern serve [--config FILE] [--rtmp-bind ADDR] [--http-bind ADDR] [--data-dir DIR] [--log LEVEL]
//! tern check-config FILE
//! tern so watch <rtmp-url> <so-name>
//! tern so set <rtmp-url> <so-name> <key> <json-value>
//! tern trace <file> [--direction c2s|s2c]
//! ```
//!
//! Precedence for `serve`: built-in defaults, then the config file, then
//! command-line options.

use crate::config::{Config, ConfigError, LoadError};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// tern: a real-time server for RTMP and WebSocket clients: scopes, shared
/// objects and live streams.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
pub struct Cli {
    /// What to do; without one, `serve` with built-in defaults.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Check a configuration file and print every error with its line.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Inspect or change a shared object on a running server, as an RTMP
    /// client.
    #[command(subcommand)]
    So(SoCommand),
    /// Decode a captured RTMP byte stream and print its messages.
    Trace(TraceArgs),
    /// Print a signed URL for an app with a `secret` (docs/security.md).
    Sign(SignArgs),
}

/// `tern sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// `rtmp://host/app[/room…]/stream` or `ws://host:port/app[/room…]`.
    pub url: String,
    /// The app's secret.
    #[arg(
        long,
        value_name = "SECRET",
        conflicts_with = "secret_file",
        required_unless_present = "secret_file"
    )]
    pub secret: Option<String>,
    /// A file holding the app's secret (as `secret_file` in the config).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Seconds the URL stays valid.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub expires_in: u64,
}

impl SignArgs {
    /// The signed URL, or why not.
    pub fn run(&self, now: u64) -> Result<String, String> {
        let app = crate::access::AppConfig {
            secret: self.secret.clone(),
            secret_file: self.secret_file.clone(),
            ..crate::access::AppConfig::default()
        };
        let secret = app
            .load_secret()?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| "the secret is empty".to_owned())?;
        crate::access::sign::sign_url(&self.url, &secret, now, self.expires_in)
    }
}

/// `tern serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see docs/config.md); without it, built-in
    /// defaults.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// RTMP listen address (overrides server.rtmp_bind).
    #[arg(long, value_name = "ADDR")]
    pub rtmp_bind: Option<SocketAddr>,
    /// HTTP/WebSocket listen address (overrides server.http_bind).
    #[arg(long, value_name = "ADDR")]
    pub http_bind: Option<SocketAddr>,
    /// Directory of persistent shared objects (overrides server.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter, e.g. `debug` or `info,tern_runtime_std=trace` (overrides
    /// logging.level and RUST_LOG).
    #[arg(long, value_name = "LEVEL")]
    pub log: Option<String>,
}

/// `tern so …`.
#[derive(Debug, Subcommand)]
pub enum SoCommand {
    /// Subscribe to a shared object and print every change.
    Watch {
        /// Use the persistent object of that name (default: transient).
        #[arg(long)]
        persistent: bool,
        /// Server and scope, e.g. rtmp://127.0.0.1/chat/room1.
        rtmp_url: String,
        /// Shared-object name.
        so_name: String,
    },
    /// Set one attribute of a shared object.
    Set {
        /// Use the persistent object of that name (default: transient).
        #[arg(long)]
        persistent: bool,
        /// Server and scope, e.g. rtmp://127.0.0.1/chat/room1.
        rtmp_url: String,
        /// Shared-object name.
        so_name: String,
        /// Attribute name.
        key: String,
        /// The value as JSON, e.g. '"hello"', 42 or '{"a":[1,2]}'.
        #[arg(value_parser = parse_json)]
        json_value: serde_json::Value,
    },
}

/// `tern trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A file of raw RTMP bytes (one direction of a connection).
    pub file: PathBuf,
    /// Which side sent the bytes (client to server, or server to client);
    /// by default guessed from the handshake.
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
}

/// Direction of a captured byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("not valid JSON ({e}); quote strings: '\"text\"'"))
}

/// Why `serve` has no configuration to run with.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeConfigError {
    /// The config file could not be read or is invalid.
    Load(LoadError),
    /// The command-line overrides made it invalid.
    Overrides(Vec<ConfigError>),
}

impl std::fmt::Display for ServeConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeConfigError::Load(e) => e.fmt(f),
            ServeConfigError::Overrides(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "command line: {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ServeConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeConfigError::Load(e) => Some(e),
            ServeConfigError::Overrides(_) => None,
        }
    }
}

impl ServeArgs {
    /// Defaults, then the file (if any), then the options.
    pub fn build_config(&self) -> Result<Config, ServeConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path).map_err(ServeConfigError::Load)?,
            None => Config::default(),
        };
        self.apply(&mut config);
        config.validate().map_err(ServeConfigError::Overrides)?;
        Ok(config)
    }

    /// Applies the command-line overrides.
    pub fn apply(&self, config: &mut Config) {
        if let Some(addr) = self.rtmp_bind {
            config.server.rtmp_bind = addr;
        }
        if let Some(addr) = self.http_bind {
            config.server.http_bind = addr;
        }
        if let Some(dir) = &self.data_dir {
            config.server.data_dir.clone_from(dir);
        }
        if let Some(level) = &self.log {
            config.logging.level.clone_from(level);
        }
    }
}

/// `tern check-config FILE`: writes `FILE: ok`, or one
/// `FILE:LINE:COL: message` line per error. Returns true if valid.
pub fn check_config(path: &Path, out: &mut impl Write) -> io::Result<bool> {
    let file = path.display();
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(e) => {
            writeln!(out, "{file}: cannot read: {e}")?;
            return Ok(false);
        }
    };
    match Config::from_toml_str(&source) {
        Ok(_) => {
            writeln!(out, "{file}: ok")?;
            Ok(true)
        }
        Err(errors) => {
            for e in &errors {
                match e.location {
                    Some(at) => writeln!(out, "{file}:{}:{}: {}", at.line, at.column, e.message())?,
                    None => writeln!(out, "{file}: {}", e.message())?,
                }
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("tern").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        assert!(parse(&[]).command.is_none());
    }

    #[test]
    fn serve_overrides_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tern.toml");
        std::fs::write(
            &file,
            "[server]\nrtmp_bind = \"0.0.0.0:1935\"\nhttp_bind = \"0.0.0.0:8081\"\n",
        )
        .unwrap();
        let Some(Command::Serve(args)) = parse(&[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--http-bind",
            "127.0.0.1:9000",
            "--data-dir",
            "/var/lib/tern",
            "--log",
            "debug",
        ])
        .command
        else {
            panic!("not serve");
        };
        let config = args.build_config().unwrap();
        assert_eq!(config.server.rtmp_bind.to_string(), "0.0.0.0:1935");
        assert_eq!(config.server.http_bind.to_string(), "127.0.0.1:9000");
        assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/tern"));
        assert_eq!(config.logging.level, "debug");
    }

    #[test]
    fn invalid_override_is_reported() {
        let args = ServeArgs {
            http_bind: Some("127.0.0.1:1935".parse().unwrap()),
            ..ServeArgs::default()
        };
        let err = args.build_config().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("command line: server.http_bind: same address"),
            "{err}"
        );
    }

    #[test]
    fn bad_addresses_and_json_are_refused_by_the_parser() {
        let no = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("tern").chain(args.iter().copied())).is_err()
        };
        assert!(no(&["serve", "--rtmp-bind", "localhost"]));
        assert!(no(&["so", "set", "rtmp://h/chat", "s", "k", "not json"]));
        assert!(no(&["trace", "f", "--direction", "up"]));
    }

    #[test]
    fn so_and_trace_arguments() {
        let Some(Command::So(SoCommand::Set {
            persistent,
            rtmp_url,
            so_name,
            key,
            json_value,
        })) = parse(&[
            "so",
            "set",
            "--persistent",
            "rtmp://h/chat/r",
            "chat",
            "msg",
            "{\"a\":[1]}",
        ])
        .command
        else {
            panic!("not so set");
        };
        assert!(persistent);
        assert_eq!(rtmp_url, "rtmp://h/chat/r");
        assert_eq!(so_name, "chat");
        assert_eq!(key, "msg");
        assert_eq!(json_value, serde_json::json!({"a": [1]}));

        assert!(matches!(
            parse(&["so", "watch", "rtmp://h/chat", "chat"]).command,
            Some(Command::So(SoCommand::Watch { .. }))
        ));
        let Some(Command::Trace(trace)) =
            parse(&["trace", "cap.bin", "--direction", "s2c"]).command
        else {
            panic!("not trace");
        };
        assert_eq!(trace.direction, Some(Direction::S2c));
    }

    #[test]
    fn check_config_prints_ok_or_file_line_col() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[server]\nout_chunk_size = 128\n").unwrap();
        let mut out = Vec::new();
        assert!(check_config(&good, &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}: ok\n", good.display())
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[server]\nout_chunk_size = 0\nnope = 1\n").unwrap();
        let mut out = Vec::new();
        assert!(!check_config(&bad, &mut out).unwrap());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "{f}:2:18: server.out_chunk_size: 0 is out of range: must be between 1 and 2147483647\n\
                 {f}:3:1: server.nope: unknown field `nope`, expected one of `rtmp_bind`, `http_bind`, `out_chunk_size`, `data_dir`, `write_timeout_secs`, `heap_trim_secs`, `rtmps_bind`, `https_bind`\n",
                f = bad.display()
            )
        );

        let mut out = Vec::new();
        assert!(!check_config(&dir.path().join("missing.toml"), &mut out).unwrap());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("missing.toml: cannot read")
        );
    }

    #[test]
    fn example_file_passes_check_config() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tern.example.toml");
        let mut out = Vec::new();
        let ok = check_config(&example, &mut out).unwrap();
        assert!(ok, "{}", String::from_utf8_lossy(&out));
    }

    /// The example in docs/config.md is the example file, verbatim.
    #[test]
    fn docs_example_matches_the_example_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(root.join("../docs/config.md")).unwrap();
        let example = std::fs::read_to_string(root.join("tern.example.toml")).unwrap();
        let section = docs
            .split_once("## Full example")
            .expect("docs/config.md has a '## Full example' section")
            .1;
        let block = section
            .split_once("```toml\n")
            .unwrap()
            .1
            .split_once("```")
            .unwrap()
            .0;
        assert_eq!(block, example);
    }

    /// Every key of the configuration is documented.
    #[test]
    fn docs_cover_every_key() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(root.join("../docs/config.md")).unwrap();
        let example = std::fs::read_to_string(root.join("tern.example.toml")).unwrap();
        let config: toml::Table = toml::from_str(&example).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for table in [config, defaults] {
            for (section, value) in &table {
                assert!(docs.contains(&format!("[{section}")), "section {section}");
                if section == "apps" {
                    continue;
                }
                for key in value.as_table().unwrap().keys() {
                    assert!(
                        docs.contains(&format!("| `{key}` |")),
                        "[{section}] {key} is not documented"
                    );
                }
            }
        }
    }
}
