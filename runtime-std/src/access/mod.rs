//! Access control on the server: `[apps.NAME]` rules turned into the
//! core's [`AccessPolicy`], the HTTP client for callbacks ([`hooks`]), and
//! `tern sign` ([`sign`]).
//!
//! The decisions themselves are the core's ([`tern_core::access::Gate`],
//! one per connection, sans-IO); this module only configures them and makes
//! the HTTP calls they ask for. docs/security.md explains the whole.

pub mod conn;
pub mod hooks;
pub mod sign;

use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tern_core::access::{AccessPolicy, AddrRules, AppPolicy, HookKind, HookUrls, RateLimit};
use tracing::error;

/// How callbacks are sent (nginx-rtmp's `notify_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyMethod {
    /// Form-encoded body (the default).
    #[default]
    Post,
    /// Fields in the query string, no body.
    Get,
}

/// `[apps.<name>]`: one configured application and what it allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Who may connect: CIDR blocks or `"all"`.
    pub allow_connect: Vec<String>,
    /// Who may publish.
    pub allow_publish: Vec<String>,
    /// Who may play.
    pub allow_play: Vec<String>,
    /// Signed URLs: the HMAC key (see docs/security.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Signed URLs: a file holding the key (trailing newline ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// `on_connect` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_connect: Option<String>,
    /// `on_publish` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_publish: Option<String>,
    /// `on_play` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_play: Option<String>,
    /// `on_done` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_done: Option<String>,
    /// `on_publish_done` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_publish_done: Option<String>,
    /// `on_play_done` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_play_done: Option<String>,
    /// `on_update` callback URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    /// `post` or `get`.
    pub notify_method: NotifyMethod,
    /// A callback without a reply within this long counts as failed.
    pub notify_timeout_ms: u64,
    /// `on_update` period (0: never).
    pub notify_update_interval_secs: u64,
    /// `on_update`: failed calls drop the client too.
    pub notify_update_strict: bool,
    /// Callbacks of this app in flight at once; beyond, a decision is
    /// refused at once (with a log line) instead of queued.
    pub notify_max_in_flight: usize,
    /// Clients may write (set, delete, send) shared objects.
    pub client_so_write: bool,
    /// What of each live stream of the app is written to FLV files
    /// (nginx-rtmp's `record`; see [`crate::record`]).
    pub record: crate::config::RecordMode,
    /// Directory recordings go to (under it: `<app>/<room…>/`); unset =
    /// `<data_dir>/recordings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_path: Option<PathBuf>,
    /// Appended to the stream name, strftime-style (`%Y %m %d %H %M %S
    /// %s %%`, UTC).
    pub record_suffix: String,
    /// A file this large (bytes) ends at the next keyframe; 0 = no limit.
    pub record_max_size: u64,
    /// A file with this many video frames ends at the next keyframe; 0 =
    /// no limit.
    pub record_max_frames: u64,
    /// A file this old (seconds) ends at the next keyframe; 0 = never.
    pub record_interval_secs: u64,
    /// Targets every stream published in the app is pushed to
    /// (`rtmp[s]://host[:port]/app[/name]`; see [`crate::relay`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub push: Vec<String>,
    /// The origin a play of a stream not live here pulls it from
    /// (`rtmp[s]://host[:port]/app`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<String>,
    /// A pull stops after its stream has had no player this long (seconds).
    pub pull_idle_secs: u64,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            allow_connect: vec!["all".to_owned()],
            allow_publish: vec!["all".to_owned()],
            allow_play: vec!["all".to_owned()],
            secret: None,
            secret_file: None,
            on_connect: None,
            on_publish: None,
            on_play: None,
            on_done: None,
            on_publish_done: None,
            on_play_done: None,
            on_update: None,
            notify_method: NotifyMethod::Post,
            notify_timeout_ms: 3000,
            notify_update_interval_secs: 30,
            notify_update_strict: false,
            notify_max_in_flight: 256,
            client_so_write: true,
            record: crate::config::RecordMode::Off,
            record_path: None,
            record_suffix: "-%Y%m%d-%H%M%S.flv".to_owned(),
            record_max_size: 0,
            record_max_frames: 0,
            record_interval_secs: 0,
            push: Vec::new(),
            pull: None,
            pull_idle_secs: 10,
        }
    }
}

impl AppConfig {
    fn hook_urls(&self) -> HookUrls {
        HookUrls {
            on_connect: self.on_connect.clone(),
            on_publish: self.on_publish.clone(),
            on_play: self.on_play.clone(),
            on_done: self.on_done.clone(),
            on_publish_done: self.on_publish_done.clone(),
            on_play_done: self.on_play_done.clone(),
            on_update: self.on_update.clone(),
        }
    }

    /// The signing key, read from `secret_file` if that is set.
    pub fn load_secret(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(secret) = &self.secret {
            return Ok(Some(secret.as_bytes().to_vec()));
        }
        let Some(path) = &self.secret_file else {
            return Ok(None);
        };
        let mut bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read secret_file {}: {e}", path.display()))?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(format!("secret_file {} is empty", path.display()));
        }
        Ok(Some(bytes))
    }

    /// Problems with this app's keys: `(key, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (key, list) in [
            ("allow_connect", &self.allow_connect),
            ("allow_publish", &self.allow_publish),
            ("allow_play", &self.allow_play),
        ] {
            if let Err(e) = AddrRules::parse(list) {
                out.push((key, e.to_string()));
            }
        }
        if self.secret.is_some() && self.secret_file.is_some() {
            out.push((
                "secret_file",
                "set either secret or secret_file, not both".to_owned(),
            ));
        } else if self.secret.as_deref() == Some("") {
            out.push(("secret", "must not be empty".to_owned()));
        } else if let Err(e) = self.load_secret() {
            out.push(("secret_file", e));
        }
        for url in &self.push {
            if let Err(e) = crate::relay::Target::parse(url) {
                out.push(("push", format!("{url:?}: {e}")));
            }
        }
        if let Some(url) = &self.pull {
            match crate::relay::Target::parse(url) {
                Err(e) => out.push(("pull", format!("{url:?}: {e}"))),
                Ok(t) if t.name.is_some() => out.push((
                    "pull",
                    format!(
                        "{url:?}: an origin is rtmp://host/app (the stream name is the one played here)"
                    ),
                )),
                Ok(_) => {}
            }
        }
        let urls = self.hook_urls();
        for kind in [
            HookKind::Connect,
            HookKind::Publish,
            HookKind::Play,
            HookKind::Done,
            HookKind::PublishDone,
            HookKind::PlayDone,
            HookKind::Update,
        ] {
            if let Some(url) = urls.url(kind)
                && let Err(e) = hooks::Endpoint::parse(url)
            {
                out.push((kind.config_key(), e));
            }
        }
        if !(1..=600_000).contains(&self.notify_timeout_ms) {
            out.push((
                "notify_timeout_ms",
                format!(
                    "{} is out of range: must be between 1 and 600000",
                    self.notify_timeout_ms
                ),
            ));
        }
        if self.notify_max_in_flight == 0 {
            out.push(("notify_max_in_flight", "must be at least 1".to_owned()));
        }
        out
    }

    /// The core's view of this app. A key that does not load (a
    /// `secret_file` gone since `check-config`) closes the app: every
    /// connect, publish and play is refused, and the reason is logged.
    fn policy(&self, name: &str) -> AppPolicy {
        let rules = |list: &[String]| AddrRules::parse(list).unwrap_or_else(|_| deny_all());
        let mut policy = AppPolicy {
            allow_connect: rules(&self.allow_connect),
            allow_publish: rules(&self.allow_publish),
            allow_play: rules(&self.allow_play),
            secret: None,
            hooks: self.hook_urls(),
            update_interval: tern_core::Duration::from_secs(self.notify_update_interval_secs),
            update_strict: self.notify_update_strict,
            client_so_write: self.client_so_write,
        };
        match self.load_secret() {
            Ok(secret) => policy.secret = secret,
            Err(e) => {
                error!(app = name, "{e}: refusing every client of this application");
                policy.allow_connect = deny_all();
                policy.allow_publish = deny_all();
                policy.allow_play = deny_all();
            }
        }
        policy
    }
}

fn deny_all() -> AddrRules {
    AddrRules::parse::<&str>(&[]).unwrap_or_default()
}

/// The access policy a configuration asks for.
pub fn policy(config: &Config) -> AccessPolicy {
    AccessPolicy {
        apps: config
            .apps
            .iter()
            .map(|(name, app)| (name.clone(), app.policy(name)))
            .collect::<BTreeMap<_, _>>(),
        so_ops: RateLimit {
            per_sec: config.shared_objects.max_ops_per_sec,
            burst: config.shared_objects.max_ops_burst,
        },
        max_depth: config.scopes.max_depth,
    }
}

/// The server's Unix time in seconds (for signed URLs' `expires`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_access_keys_are_reported_with_their_lines() {
        let source = "[apps.live]\nallow_publish = [\"10.0.0.0/33\"]\non_publish = \"https://x/\"\n\
                      secret = \"a\"\nsecret_file = \"/nonexistent\"\nnotify_timeout_ms = 0\n\
                      [apps.chat]\nallow_connect = [\"nowhere\"]\nnotify_method = \"put\"\n";
        let errors = Config::from_toml_str(source).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let want = [
            "2:17: apps.live.allow_publish: \"10.0.0.0/33\" has a bad prefix length",
            "3:14: apps.live.on_publish: \"https://x/\": callbacks must be http:// URLs",
            "5:15: apps.live.secret_file: set either secret or secret_file, not both",
            "6:21: apps.live.notify_timeout_ms: 0 is out of range",
            "notify_method",
        ];
        for w in want {
            assert!(text.iter().any(|t| t.contains(w)), "no {w:?} in {text:#?}");
        }
    }

    #[test]
    fn the_policy_follows_the_config() {
        let config = Config::from_toml_str(
            "[apps.live]\nallow_publish = [\"127.0.0.1/32\"]\nsecret = \"k\"\n\
             on_play = \"http://127.0.0.1:9/p\"\nclient_so_write = false\n\
             [shared_objects]\nmax_ops_per_sec = 7\nmax_ops_burst = 9\n",
        )
        .unwrap();
        let policy = policy(&config);
        let live = &policy.apps["live"];
        assert!(
            live.allow_publish
                .allows(Some("127.0.0.1".parse().unwrap()))
        );
        assert!(
            !live
                .allow_publish
                .allows(Some("127.0.0.2".parse().unwrap()))
        );
        assert!(live.allow_play.is_all());
        assert_eq!(live.secret.as_deref(), Some(&b"k"[..]));
        assert_eq!(live.hooks.on_play.as_deref(), Some("http://127.0.0.1:9/p"));
        assert!(!live.client_so_write);
        assert_eq!(
            policy.so_ops,
            RateLimit {
                per_sec: 7,
                burst: 9
            }
        );
    }

    #[test]
    fn an_unreadable_secret_file_closes_the_app() {
        let app = AppConfig {
            secret_file: Some(PathBuf::from("/nonexistent/tern.secret")),
            ..AppConfig::default()
        };
        let policy = app.policy("live");
        assert!(
            !policy
                .allow_connect
                .allows(Some("127.0.0.1".parse().unwrap()))
        );
        assert!(
            !policy
                .allow_publish
                .allows(Some("127.0.0.1".parse().unwrap()))
        );
    }
}
