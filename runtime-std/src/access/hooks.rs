//! The HTTP client for callbacks: one connection per call (as nginx-rtmp
//! does), bounded in time (`notify_timeout_ms`) and in number per app
//! (`notify_max_in_flight`).
//!
//! A call runs on a task of its own; its reply goes to the connection's
//! [`HookInbox`] and wakes the connection's task, which hands it to its
//! [`Gate`](tern_core::access::Gate). Nobody else waits for it.

use super::{AppConfig, NotifyMethod};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::access::{CallId, HookCall, HookReply};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Where a callback goes: `http://host[:port]/path[?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    path_and_query: String,
}

impl Endpoint {
    /// Parses a callback URL. Only `http://` is supported (callbacks go to
    /// a service next to the server; put a TLS proxy in between otherwise).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url:?}: callbacks must be http:// URLs"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Endpoint {
            host,
            port: uri.port_u16().unwrap_or(80),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Where a call's reply goes: the connection's inbox, and how to wake its
/// task.
pub type ReplyTo = (Arc<HookInbox>, Box<dyn FnOnce() + Send>);

/// Replies that came back for one connection.
#[derive(Debug, Default)]
pub struct HookInbox {
    replies: Mutex<Vec<(CallId, HookReply)>>,
}

impl HookInbox {
    /// Takes the replies that arrived so far.
    pub fn take(&self) -> Vec<(CallId, HookReply)> {
        std::mem::take(&mut *self.replies.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put(&self, id: CallId, reply: HookReply) {
        self.replies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, reply));
    }
}

#[derive(Debug)]
struct AppHooks {
    method: NotifyMethod,
    timeout: Duration,
    slots: Arc<Semaphore>,
    limit: usize,
}

/// Makes the callbacks of every app.
#[derive(Debug, Default)]
pub struct HookRunner {
    apps: BTreeMap<String, AppHooks>,
}

impl HookRunner {
    /// A runner for the configured apps.
    pub fn new(apps: &BTreeMap<String, AppConfig>) -> Self {
        HookRunner {
            apps: apps
                .iter()
                .map(|(name, app)| {
                    (
                        name.clone(),
                        AppHooks {
                            method: app.notify_method,
                            timeout: Duration::from_millis(app.notify_timeout_ms),
                            slots: Arc::new(Semaphore::new(app.notify_max_in_flight)),
                            limit: app.notify_max_in_flight,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Starts `call` on a task of its own. Its reply (if the call wants
    /// one) goes to `inbox`, then `wake` runs. With the app's calls all in
    /// flight, the call is not made: a failed reply is delivered at once.
    pub fn start(&self, call: HookCall, inbox: Option<ReplyTo>) {
        let Some(app) = self.apps.get(&call.app) else {
            return;
        };
        let wants_reply = call.kind.wants_reply();
        let permit = match Arc::clone(&app.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let why = format!(
                    "{} callbacks of app {} already in flight (notify_max_in_flight)",
                    app.limit, call.app
                );
                warn!(call = call.kind.config_key(), "callback not made: {why}");
                if wants_reply && let Some((inbox, wake)) = inbox {
                    inbox.put(call.id, HookReply::Failed(why));
                    wake();
                }
                return;
            }
        };
        let method = app.method;
        let timeout = app.timeout;
        tokio::spawn(async move {
            let reply = perform(&call, method, timeout).await;
            drop(permit);
            if wants_reply {
                debug!(call = call.kind.config_key(), url = %call.url, "callback: {reply}");
                if let Some((inbox, wake)) = inbox {
                    inbox.put(call.id, reply);
                    wake();
                }
            } else if let HookReply::Failed(why) = &reply {
                info!(call = call.kind.config_key(), url = %call.url, "callback failed: {why}");
            }
        });
    }

    /// Makes `call` and waits for its reply (a WebSocket upgrade waiting
    /// for `on_connect`, on its own connection's task).
    pub async fn call_now(&self, call: &HookCall) -> HookReply {
        let Some(app) = self.apps.get(&call.app) else {
            return HookReply::Failed(format!("app {} has no callback settings", call.app));
        };
        let Ok(_permit) = Arc::clone(&app.slots).try_acquire_owned() else {
            let why = format!(
                "{} callbacks of app {} already in flight (notify_max_in_flight)",
                app.limit, call.app
            );
            warn!(call = call.kind.config_key(), "callback not made: {why}");
            return HookReply::Failed(why);
        };
        perform(call, app.method, app.timeout).await
    }
}

/// One HTTP/1.1 request with the call's fields, bounded by `timeout` from
/// connecting to the reply's status line and headers (the body is not read).
pub async fn perform(call: &HookCall, method: NotifyMethod, timeout: Duration) -> HookReply {
    match tokio::time::timeout(timeout, request(call, method)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(why)) => HookReply::Failed(why),
        Err(_) => HookReply::Failed(format!("no reply within {} ms", timeout.as_millis())),
    }
}

async fn request(call: &HookCall, method: NotifyMethod) -> Result<HookReply, String> {
    let endpoint = Endpoint::parse(&call.url)?;
    let form = call.form();
    let (method, target, body) = match method {
        NotifyMethod::Post => (hyper::Method::POST, endpoint.path_and_query.clone(), form),
        NotifyMethod::Get => {
            let sep = if endpoint.path_and_query.contains('?') {
                '&'
            } else {
                '?'
            };
            (
                hyper::Method::GET,
                format!("{}{sep}{form}", endpoint.path_and_query),
                String::new(),
            )
        }
    };
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.host_header()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
    let mut builder = hyper::Request::builder()
        .method(method.clone())
        .uri(target)
        .header(HOST, endpoint.host_header())
        .header(USER_AGENT, concat!("tern/", env!("CARGO_PKG_VERSION")));
    if method == hyper::Method::POST {
        builder = builder
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CONTENT_LENGTH, body.len());
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("bad request: {e}"))?;
    let send = sender.send_request(request);
    tokio::pin!(connection, send);
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        ended = &mut connection => match ended {
            // A receiver that answers and closes at once (`Connection:
            // close`) ends the connection with the reply already read.
            Ok(()) => send.await,
            Err(e) => return Err(format!("connection failed: {e}")),
        },
    }
    .map_err(|e| format!("no reply: {e}"))?;
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(HookReply::Status {
        code: response.status().as_u16(),
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::access::HookKind;

    fn call(id: u64, addr: std::net::SocketAddr) -> HookCall {
        HookCall {
            id: CallId(id),
            app: "live".to_owned(),
            kind: HookKind::Publish,
            url: format!("http://{addr}/hook"),
            fields: vec![("call".to_owned(), "publish".to_owned())],
        }
    }

    /// A receiver that accepts connections and never answers: calls time
    /// out, and beyond `notify_max_in_flight` fail at once.
    #[tokio::test]
    async fn calls_are_bounded_in_time_and_number() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut apps = BTreeMap::new();
        apps.insert(
            "live".to_owned(),
            AppConfig {
                notify_max_in_flight: 1,
                notify_timeout_ms: 300,
                ..AppConfig::default()
            },
        );
        let runner = HookRunner::new(&apps);
        let inbox = Arc::new(HookInbox::default());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wake = |w: &Arc<std::sync::atomic::AtomicUsize>| -> Box<dyn FnOnce() + Send> {
            let w = Arc::clone(w);
            Box::new(move || {
                w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let started = std::time::Instant::now();
        runner.start(call(1, addr), Some((Arc::clone(&inbox), wake(&woken))));
        // The one slot is taken: the next call fails at once, both ways.
        let reply = runner.call_now(&call(2, addr)).await;
        assert!(
            matches!(&reply, HookReply::Failed(w) if w.contains("in flight")),
            "{reply:?}"
        );
        runner.start(call(3, addr), Some((Arc::clone(&inbox), wake(&woken))));
        let replies = inbox.take();
        assert!(
            matches!(&replies[..], [(CallId(3), HookReply::Failed(_))]),
            "{replies:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(200));
        // The first one times out after 300 ms and wakes its connection.
        let replies = loop {
            let r = inbox.take();
            if !r.is_empty() {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            matches!(&replies[..], [(CallId(1), HookReply::Failed(w))] if w == "no reply within 300 ms"),
            "{replies:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 2);
        // The slot is free again.
        let reply = runner.call_now(&call(4, addr)).await;
        assert!(
            matches!(&reply, HookReply::Failed(w) if w.contains("no reply")),
            "{reply:?}"
        );
        drop(listener);
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path_and_query.as_str()),
            ("127.0.0.1", 8080, "/hook?x=1")
        );
        let e = Endpoint::parse("http://[::1]/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.host_header()),
            ("::1", 80, "[::1]:80".to_owned())
        );
        assert!(Endpoint::parse("https://x/").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
