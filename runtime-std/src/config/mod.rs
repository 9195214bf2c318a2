//! The server's configuration: built-in defaults, a TOML file, then CLI
//! overrides (applied by `main.rs`).
//!
//! Every key has a default, so an empty file (or no file) is a working
//! configuration. `docs/config.md` documents each key; keep the two in step.
//!
//! Loading reports *every* problem it can find, each with the 1-based line
//! and column it comes from, so `tern check-config` can print them all at
//! once:
//!
//! 1. syntax errors (all of them, using the parser's recovery; if there are
//!    any, nothing else is checked);
//! 2. unknown keys and wrong types, found by deserializing the document one
//!    key at a time (serde stops at the first error of a whole document);
//! 3. semantic errors ([`Config::validate`]): bad app names, out-of-range
//!    numbers, and so on, checked on the document without the keys of step
//!    2 and located through the parsed document's spans.

mod error;
mod schema;
mod spans;
mod validation;

pub use error::*;
pub use schema::*;
pub use spans::Location;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;
    use tern_core::scope_path::NameError;

    fn errors(source: &str) -> Vec<ConfigError> {
        Config::from_toml_str(source).expect_err("should be invalid")
    }

    fn line_of(e: &ConfigError) -> usize {
        e.location.expect("located").line
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let config = Config::from_toml_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.rtmp_bind.to_string(), "127.0.0.1:1935");
        assert_eq!(config.server.http_bind.to_string(), "127.0.0.1:8081");
        assert_eq!(config.apps.keys().collect::<Vec<_>>(), vec!["chat", "live"]);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn values_override_defaults_section_by_section() {
        let config = Config::from_toml_str(
            "[server]\nrtmp_bind = \"0.0.0.0:19350\"\n\n[apps.radio]\n\n[streams]\ngop_cache = false\n",
        )
        .unwrap();
        assert_eq!(config.server.rtmp_bind.to_string(), "0.0.0.0:19350");
        assert_eq!(config.server.http_bind.to_string(), "127.0.0.1:8081");
        assert_eq!(config.apps.keys().collect::<Vec<_>>(), vec!["radio"]);
        assert!(!config.streams.gop_cache);
        assert_eq!(config.streams.max_lag_ms, 5_000);
    }

    #[test]
    fn defaults_serialize_to_a_file_that_parses_back() {
        let text = toml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), Config::default());
    }

    #[test]
    fn syntax_error_has_its_line() {
        let e = errors("[server]\nrtmp_bind = \"127.0.0.1:1935\"\nout_chunk_size = = 3\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(matches!(e[0].kind, ConfigErrorKind::Syntax(_)));
        assert_eq!(line_of(&e[0]), 3);
    }

    #[test]
    fn every_syntax_error_is_reported() {
        let e = errors("a = = 1\n[server\nb = \"unterminated\n");
        assert!(e.len() >= 2, "{e:?}");
        assert_eq!(line_of(&e[0]), 1);
        assert!(e.iter().any(|e| line_of(e) == 2));
    }

    #[test]
    fn unknown_keys_each_get_their_line() {
        let e = errors(
            "[server]\nrtmp_bind = \"127.0.0.1:1935\"\nrtmp_port = 1935\n\n[sessions]\nidle = 3\n\n[nope]\nx = 1\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(line_of(&e[0]), 3);
        assert_eq!(e[0].key.as_deref(), Some("server.rtmp_port"));
        assert!(
            e[0].message().contains("unknown field `rtmp_port`"),
            "{}",
            e[0]
        );
        assert_eq!(line_of(&e[1]), 6);
        assert_eq!(e[1].key.as_deref(), Some("sessions.idle"));
        assert_eq!(line_of(&e[2]), 8);
        assert_eq!(e[2].key.as_deref(), Some("nope"));
    }

    #[test]
    fn wrong_type_has_line_and_column() {
        let e = errors("[scopes]\nmax_depth = 2\nroom_idle_secs = \"soon\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(matches!(e[0].kind, ConfigErrorKind::Schema(_)));
        assert_eq!(
            e[0].location,
            Some(Location {
                line: 3,
                column: 18
            })
        );
        assert_eq!(e[0].key.as_deref(), Some("scopes.room_idle_secs"));
    }

    #[test]
    fn negative_number_is_a_type_error() {
        let e = errors("[scopes]\n\nmax_depth = -1\n");
        assert_eq!(line_of(&e[0]), 3);
    }

    #[test]
    fn bad_bind_address_has_its_line() {
        let e = errors("[server]\n\nhttp_bind = \"localhost\"\n");
        assert_eq!(e.len(), 1);
        assert_eq!(line_of(&e[0]), 3);
        assert!(e[0].message().contains("IP:PORT"), "{}", e[0]);
    }

    #[test]
    fn chunk_size_bounds() {
        let e = errors("[server]\nout_chunk_size = 0\n");
        assert_eq!(
            e[0].kind,
            ConfigErrorKind::OutOfRange {
                value: 0,
                min: 1,
                max: 2_147_483_647
            }
        );
        assert_eq!(line_of(&e[0]), 2);
        assert_eq!(e[0].key.as_deref(), Some("server.out_chunk_size"));

        let e = errors("\n\n[server]\nout_chunk_size = 2147483648\n");
        assert!(matches!(
            e[0].kind,
            ConfigErrorKind::OutOfRange {
                value: 2_147_483_648,
                ..
            }
        ));
        assert_eq!(line_of(&e[0]), 4);

        // beyond u32 is a type error, still located
        let e = errors("[server]\nout_chunk_size = 99999999999\n");
        assert_eq!(line_of(&e[0]), 2);

        assert!(Config::from_toml_str("[server]\nout_chunk_size = 2147483647\n").is_ok());
    }

    #[test]
    fn invalid_app_names_point_at_the_name() {
        let e = errors("[apps.live]\n\n[apps.\"..\"]\n[apps.\"a b\"]\n");
        assert_eq!(e.len(), 2, "{e:?}");
        // BTreeMap order: ".." < "a b"
        assert!(matches!(
            &e[0].kind,
            ConfigErrorKind::InvalidAppName { name, reason: NameError::DotSegment } if name == ".."
        ));
        assert_eq!(line_of(&e[0]), 3);
        assert_eq!(line_of(&e[1]), 4);
        assert_eq!(e[1].location.unwrap().column, 7);
    }

    #[test]
    fn cluster_table_parses_and_its_values_are_checked() {
        let config = Config::from_toml_str(
            "[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\nnode_id = \"edge-1\"\nadvertise_rtmp = \"10.0.0.5:1935\"\n",
        )
        .unwrap();
        let cluster = config.cluster.expect("cluster");
        assert_eq!(cluster.nats_url, "nats://127.0.0.1:4222");
        assert_eq!(cluster.node_id.as_deref(), Some("edge-1"));
        assert!(
            Config::default().cluster.is_none(),
            "single node by default"
        );
        let e = errors(
            "[cluster]\nnats_url = \"http://x\"\nnode_id = \"a b\"\nadvertise_rtmp = \"nohost\"\n",
        );
        let keys: Vec<_> = e
            .iter()
            .map(|e| e.key.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "cluster.nats_url",
                "cluster.node_id",
                "cluster.advertise_rtmp"
            ],
            "{e:?}"
        );
        assert_eq!(e.iter().map(line_of).collect::<Vec<_>>(), vec![2, 3, 4]);
        // nats_url is required inside the table.
        assert!(Config::from_toml_str("[cluster]\nnode_id = \"a\"\n").is_err());
    }

    #[test]
    fn no_apps_is_an_error() {
        let e = errors("# comment\napps = {}\n");
        assert_eq!(e[0].kind, ConfigErrorKind::NoApps);
        assert_eq!(line_of(&e[0]), 2);
    }

    #[test]
    fn several_semantic_errors_at_once() {
        let e = errors(
            "[server]\nout_chunk_size = 0\nhttp_bind = \"127.0.0.1:1935\"\n[logging]\nlevel = \"loud!!\"\n[websocket]\necho_path = \"echo\"\n",
        );
        let lines: Vec<usize> = e.iter().map(line_of).collect();
        assert_eq!(lines, vec![2, 3, 5, 7], "{e:?}");
    }

    #[test]
    fn schema_and_value_errors_are_reported_together() {
        let e =
            errors("[server]\nrtmp_port = 1\nout_chunk_size = 0\nhttp_bind = 5\n[apps.\"a b\"]\n");
        let keys: Vec<&str> = e.iter().filter_map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            vec![
                "server.rtmp_port",
                "server.out_chunk_size",
                "server.http_bind",
                "apps.a b"
            ],
            "{e:?}"
        );
        let lines: Vec<usize> = e.iter().map(line_of).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
    }

    #[test]
    fn display_is_line_col_message() {
        let e = errors("[server]\nout_chunk_size = 0\n");
        assert_eq!(
            e[0].to_string(),
            "2:18: server.out_chunk_size: 0 is out of range: must be between 1 and 2147483647"
        );
    }

    #[test]
    fn premium_clients_get_the_longer_idle_timeout() {
        let s = SessionsConfig::default();
        assert_eq!(s.idle_timeout_for(""), Some(Duration::from_secs(900)));
        assert_eq!(
            s.idle_timeout_for("token=x&tier=premium"),
            Some(Duration::from_secs(10_800))
        );
        assert_eq!(
            s.idle_timeout_for("tier=basic"),
            Some(Duration::from_secs(900))
        );
        let never = SessionsConfig {
            idle_timeout_secs: 0,
            ..s
        };
        assert_eq!(never.idle_timeout_for(""), None);
    }

    #[test]
    fn location_counts_characters() {
        let src = "é = 1\nab";
        assert_eq!(Location::of_offset(src, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(src, 2), Location { line: 1, column: 2 });
        assert_eq!(Location::of_offset(src, 1), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(src, 7), Location { line: 2, column: 1 });
        assert_eq!(
            Location::of_offset(src, 99),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn load_reports_missing_file() {
        let err = Config::load(Path::new("/nonexistent/tern.toml")).unwrap_err();
        assert!(matches!(err, LoadError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/tern.toml"));
    }
}
