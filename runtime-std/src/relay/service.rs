//! The server's relays: which apps push and pull where, the relays
//! running, and the task that starts them.
//!
//! Call order: the server makes one [`RelayService`] from its config
//! ([`RelayService::new`]); its hub event routing calls
//! [`on_published`](RelayService::on_published) and
//! [`on_play_waiting`](RelayService::on_play_waiting) (with the hub's lock
//! held: they only note jobs); [`run`](RelayService::run) runs for the
//! server's life, spawns a task per job and stops every relay at shutdown.
//! The admin API adds and stops pushes with
//! [`add_push`](RelayService::add_push) and
//! [`stop_push`](RelayService::stop_push).

use super::connect::TokioConnector;
use super::{Connector, Host, Kind, RelayError, Relays, Settings, Source, Target};
use crate::access::AppConfig;
use crate::wakeup::Wakeup;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::scope_path::ScopePath;
use tokio::sync::watch;
use tracing::{Instrument, warn};

/// A connector behind a boxed future, so the server holds one type
/// whatever sockets it runs on (tokio's, or the simulator's).
pub type ConnectFn = dyn Fn(
        Target,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn crate::net::Stream>, RelayError>> + Send>>
    + Send
    + Sync;

/// [`Connector`] over a [`ConnectFn`].
#[derive(Clone)]
pub struct BoxedConnector(pub Arc<ConnectFn>);

impl std::fmt::Debug for BoxedConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxedConnector")
    }
}

impl Connector for BoxedConnector {
    type Stream = Box<dyn crate::net::Stream>;

    fn connect(
        &self,
        target: &Target,
    ) -> impl Future<Output = Result<Self::Stream, RelayError>> + Send {
        (self.0)(target.clone())
    }
}

impl BoxedConnector {
    /// tokio's sockets, TLS per `connector`.
    pub fn tokio(connector: TokioConnector) -> Self {
        let connector = Arc::new(connector);
        BoxedConnector(Arc::new(move |target: Target| {
            let connector = Arc::clone(&connector);
            Box::pin(async move { connector.connect(&target).await })
        }))
    }

    /// A connector whose every attempt fails with `why` (TLS settings that
    /// did not load: plain pushes still need a connector).
    pub fn failing(why: String) -> Self {
        BoxedConnector(Arc::new(move |_target: Target| {
            let why = why.clone();
            Box::pin(async move { Err(RelayError::Tls(why)) })
        }))
    }
}

/// The connector `[tls]` asks for (`extra_ca`, `tls_verify`); if the
/// extra CAs do not load, every `rtmps` attempt fails saying why.
pub fn connector_for(tls: &crate::config::TlsConfig) -> BoxedConnector {
    let connector = TokioConnector::new(tls.extra_ca.as_deref(), tls.tls_verify);
    if let Some(why) = connector.tls_error() {
        warn!("rtmps relays cannot start: {why}");
    }
    BoxedConnector::tokio(connector)
}

/// One app's relay settings, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppRelays {
    /// Push targets.
    pub push: Vec<Target>,
    /// Pull origin.
    pub pull: Option<Target>,
    /// How long a pull outlives its last player.
    pub pull_idle: Duration,
}

impl AppRelays {
    /// `app`'s settings; an error names the key and the URL's fault.
    pub fn of(app: &AppConfig) -> Result<AppRelays, String> {
        let push = app
            .push
            .iter()
            .map(|url| Target::parse(url).map_err(|e| format!("push {url:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let pull = match &app.pull {
            None => None,
            Some(url) => {
                let target = Target::parse(url).map_err(|e| format!("pull {url:?}: {e}"))?;
                if target.name.is_some() {
                    return Err(format!(
                        "pull {url:?}: an origin URL is rtmp://host/app (the stream name is the one played here)"
                    ));
                }
                Some(target)
            }
        };
        Ok(AppRelays {
            push,
            pull,
            pull_idle: Duration::from_secs(app.pull_idle_secs),
        })
    }

    fn is_empty(&self) -> bool {
        self.push.is_empty() && self.pull.is_none()
    }
}

#[derive(Debug)]
enum Job {
    Push(Arc<super::Relay>),
    Pull(Arc<super::Relay>, Duration),
}

/// See the module docs.
#[derive(Debug)]
pub struct RelayService {
    apps: BTreeMap<String, AppRelays>,
    relays: Arc<Relays>,
    jobs: Mutex<Vec<Job>>,
    wake: Wakeup,
    settings: Settings,
    connector: Mutex<BoxedConnector>,
}

impl RelayService {
    /// The service for `apps` (apps without `push`/`pull` are left out; a
    /// URL that does not parse is left out with a warning, as config
    /// validation refuses it first).
    pub fn new(
        apps: &BTreeMap<String, AppConfig>,
        settings: Settings,
        connector: BoxedConnector,
    ) -> Self {
        let apps = apps
            .iter()
            .filter_map(|(name, app)| match AppRelays::of(app) {
                Ok(relays) if relays.is_empty() => None,
                Ok(relays) => Some((name.clone(), relays)),
                Err(e) => {
                    warn!("apps.{name}: {e}");
                    None
                }
            })
            .collect();
        RelayService {
            apps,
            relays: Arc::new(Relays::default()),
            jobs: Mutex::new(Vec::new()),
            wake: Wakeup::default(),
            settings,
            connector: Mutex::new(connector),
        }
    }

    /// True if some app has `push` or `pull`.
    pub fn configured(&self) -> bool {
        !self.apps.is_empty()
    }

    /// Replaces the connector (the simulator's sockets).
    pub fn set_connector(&self, connector: BoxedConnector) {
        *self.connector.lock().unwrap_or_else(|p| p.into_inner()) = connector;
    }

    /// The relays running.
    pub fn relays(&self) -> &Relays {
        &self.relays
    }

    fn queue(&self, job: Job) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        self.wake.wake();
    }

    /// A stream started publishing: its app's pushes start.
    pub fn on_published(&self, scope: &ScopePath, name: &str) {
        let Some(app) = self.apps.get(scope.app_name()) else {
            return;
        };
        for target in &app.push {
            if let Some(relay) =
                self.relays
                    .add(Kind::Push, scope, name, target.clone(), Source::Config)
            {
                self.queue(Job::Push(relay));
            }
        }
    }

    /// A live play found no publisher: its app's pull starts (one per
    /// stream).
    pub fn on_play_waiting(&self, scope: &ScopePath, name: &str) {
        let Some(app) = self.apps.get(scope.app_name()) else {
            return;
        };
        let Some(origin) = &app.pull else { return };
        if self.relays.find(Kind::Pull, scope, name).is_some() {
            return;
        }
        if let Some(relay) =
            self.relays
                .add(Kind::Pull, scope, name, origin.clone(), Source::Config)
        {
            self.queue(Job::Pull(relay, app.pull_idle));
        }
    }

    /// Pulls `scope`/`name` from `origin` (another node of the cluster,
    /// which publishes it) for the players here: pulls of the name from
    /// anywhere else stop; nothing happens if this pull runs already.
    pub fn pull_from(&self, scope: &ScopePath, name: &str, origin: Target, idle: Duration) {
        for relay in self.relays.cluster_pulls() {
            if &relay.scope == scope && relay.name == name && relay.target != origin {
                relay.stop();
            }
        }
        if let Some(relay) = self
            .relays
            .add(Kind::Pull, scope, name, origin, Source::Cluster)
        {
            self.queue(Job::Pull(relay, idle));
        }
    }

    /// Starts pushing `scope`/`name` to `target` (admin API); false if
    /// such a push runs already.
    pub fn add_push(&self, scope: &ScopePath, name: &str, target: Target) -> bool {
        match self
            .relays
            .add(Kind::Push, scope, name, target, Source::Api)
        {
            Some(relay) => {
                self.queue(Job::Push(relay));
                true
            }
            None => false,
        }
    }

    /// Stops the pushes of `scope`/`name` to `target` (all of them if
    /// `None`); how many.
    pub fn stop_push(&self, scope: &ScopePath, name: &str, target: Option<&Target>) -> usize {
        self.relays.stop_matching(Kind::Push, scope, name, target)
    }

    /// Starts a task per job until `shutdown` flips, then stops every
    /// relay. `seed` varies the relays' jitter.
    pub async fn run<H: Host>(
        self: Arc<Self>,
        host: Arc<H>,
        seed: u64,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => break,
                () = self.wake.wait() => {}
            }
            let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()));
            let connector = self
                .connector
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            for job in jobs {
                let (host, service, connector) =
                    (Arc::clone(&host), Arc::clone(&self), connector.clone());
                match job {
                    Job::Push(relay) => {
                        let span = tracing::info_span!("push", relay = relay.id);
                        tokio::spawn(
                            async move {
                                super::push::run(
                                    &*host,
                                    &connector,
                                    &relay,
                                    &service.settings,
                                    seed,
                                )
                                .await;
                                service.relays.remove(&relay);
                            }
                            .instrument(span),
                        );
                    }
                    Job::Pull(relay, idle) => {
                        let span = tracing::info_span!("pull", relay = relay.id);
                        tokio::spawn(
                            async move {
                                super::pull::run(
                                    &*host,
                                    &connector,
                                    &service.relays,
                                    &relay,
                                    &service.settings,
                                    idle,
                                    seed,
                                )
                                .await;
                                service.relays.remove(&relay);
                            }
                            .instrument(span),
                        );
                    }
                }
            }
        }
        self.relays.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_settings_are_parsed_and_checked() {
        let app = AppConfig {
            push: vec!["rtmp://a/live".into(), "rtmps://b/x/key".into()],
            pull: Some("rtmp://origin:1936/live".into()),
            pull_idle_secs: 3,
            ..AppConfig::default()
        };
        let relays = AppRelays::of(&app).unwrap();
        assert_eq!(relays.push.len(), 2);
        assert_eq!(relays.pull.as_ref().map(|t| t.port), Some(1936));
        assert_eq!(relays.pull_idle, Duration::from_secs(3));
        let bad = AppConfig {
            pull: Some("rtmp://origin/live/fixed".into()),
            ..AppConfig::default()
        };
        assert!(AppRelays::of(&bad).unwrap_err().contains("origin URL"));
        let bad = AppConfig {
            push: vec!["http://x/live".into()],
            ..AppConfig::default()
        };
        assert!(
            AppRelays::of(&bad)
                .unwrap_err()
                .starts_with("push \"http://x/live\"")
        );
    }

    #[test]
    fn one_pull_per_stream_and_one_push_per_target() {
        let mut apps = BTreeMap::new();
        apps.insert(
            "live".to_owned(),
            AppConfig {
                push: vec!["rtmp://a/live".into(), "rtmp://b/live".into()],
                pull: Some("rtmp://o/live".into()),
                ..AppConfig::default()
            },
        );
        apps.insert("other".to_owned(), AppConfig::default());
        let service = RelayService::new(
            &apps,
            Settings::default(),
            BoxedConnector::failing("test".into()),
        );
        let scope = ScopePath::app("live").unwrap();
        service.on_published(&scope, "cam");
        service.on_published(&scope, "cam");
        service.on_play_waiting(&scope, "cam");
        service.on_play_waiting(&scope, "cam");
        service.on_published(&ScopePath::app("other").unwrap(), "cam");
        let infos = service.relays().infos();
        let pushes = infos.iter().filter(|r| r.kind == Kind::Push).count();
        let pulls = infos.iter().filter(|r| r.kind == Kind::Pull).count();
        assert_eq!((pushes, pulls), (2, 1));
        assert!(service.add_push(&scope, "cam", Target::parse("rtmp://c/live").unwrap()));
        assert!(!service.add_push(&scope, "cam", Target::parse("rtmp://c/live").unwrap()));
        assert_eq!(service.stop_push(&scope, "cam", None), 3);
    }
}
