//! A webhook receiver for callback tests: a small HTTP/1.1 server on a
//! free port that records every request (method, path, form fields from
//! the body or the query) and answers as the test's responder says.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct HookRequest {
    /// `POST` or `GET`.
    pub method: String,
    /// The path (without the query).
    pub path: String,
    /// The form fields, in order (percent-decoded).
    pub fields: Vec<(String, String)>,
}

impl HookRequest {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `call` field.
    pub fn call(&self) -> &str {
        self.get("call").unwrap_or_default()
    }
}

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct HookAnswer {
    /// HTTP status.
    pub status: u16,
    /// A `Location` header.
    pub location: Option<String>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl HookAnswer {
    /// `status` at once, no Location.
    pub fn status(status: u16) -> HookAnswer {
        HookAnswer {
            status,
            location: None,
            delay: Duration::ZERO,
        }
    }
}

type Responder = Box<dyn Fn(&HookRequest) -> HookAnswer + Send + Sync>;

/// The receiver; it runs until the test process ends.
#[derive(Clone)]
pub struct Webhook {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<HookRequest>>>,
    responder: Arc<Mutex<Arc<Responder>>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("addr", &self.addr).finish()
    }
}

impl Webhook {
    /// Starts a receiver that answers 200 to everything.
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the webhook receiver");
        let hook = Webhook {
            addr: listener.local_addr().expect("no local address"),
            calls: Arc::default(),
            responder: Arc::new(Mutex::new(Arc::new(Box::new(|_: &HookRequest| {
                HookAnswer::status(200)
            })))),
        };
        let shared = hook.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hook = shared.clone();
                std::thread::spawn(move || hook.serve(stream));
            }
        });
        hook
    }

    /// Answers from now on as `f` says.
    pub fn respond(&self, f: impl Fn(&HookRequest) -> HookAnswer + Send + Sync + 'static) {
        *self.responder.lock().unwrap() = Arc::new(Box::new(f));
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<HookRequest> {
        self.calls.lock().unwrap().clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut fields = parse_form(query);
        fields.extend(parse_form(&String::from_utf8_lossy(&body)));
        let request = HookRequest {
            method,
            path: path.to_owned(),
            fields,
        };
        self.calls.lock().unwrap().push(request.clone());
        let responder = Arc::clone(&self.responder.lock().unwrap());
        let answer = responder(&request);
        std::thread::sleep(answer.delay);
        let mut response = format!("HTTP/1.1 {} Hook\r\n", answer.status);
        if let Some(location) = &answer.location {
            response.push_str(&format!("Location: {location}\r\n"));
        }
        response.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        let mut stream = reader.into_inner();
        let _ = stream.write_all(response.as_bytes());
    }
}

/// `a=1&b=x+y` → pairs, percent-decoded.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
