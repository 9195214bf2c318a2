//! What clients send on the wire: [`RecordingProxy`] sits between RTMP
//! clients and the server and keeps each connection's client-to-server
//! bytes in a file, and [`trace_client_bytes`] renders such a file with
//! `tern trace` (one line per RTMP message, `C→S … command NAME …`).

use crate::{tern_binary, wait_for};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One proxied connection.
#[derive(Debug)]
struct Recorded {
    /// The client's bytes, as sent.
    path: PathBuf,
    /// Set once the client closed its side and every byte is in the file.
    done: Arc<AtomicBool>,
    /// Set once the proxy closed its side towards the server.
    upstream_closed: Arc<AtomicBool>,
}

/// A TCP proxy on a free loopback port in front of `upstream` that writes
/// each accepted connection's client-to-server bytes to
/// `dir/NAME-N.c2s` (N counts connections from 0). Server-to-client bytes
/// are relayed untouched and not kept. When a client closes its side, the
/// proxy waits `hold_close` before closing its side towards the server, so
/// a test can see what the server made of the client's last messages while
/// the connection is still open. It stops accepting when dropped
/// (connections already open go on until either side closes).
#[derive(Debug)]
pub struct RecordingProxy {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl RecordingProxy {
    /// Starts the proxy.
    pub fn start(
        upstream: SocketAddr,
        dir: &Path,
        name: &str,
        hold_close: Duration,
    ) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the recording proxy");
        let addr = listener.local_addr().expect("proxy address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, name) = (dir.to_owned(), name.to_owned());
        let (recorded_by_accept, stop_accept) = (Arc::clone(&recorded), Arc::clone(&stop));
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                if stop_accept.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let path = dir.join(format!("{name}-{n}.c2s"));
                let done = Arc::new(AtomicBool::new(false));
                let upstream_closed = Arc::new(AtomicBool::new(false));
                if let Ok(mut list) = recorded_by_accept.lock() {
                    list.push(Recorded {
                        path: path.clone(),
                        done: Arc::clone(&done),
                        upstream_closed: Arc::clone(&upstream_closed),
                    });
                }
                let flags = (Arc::clone(&done), upstream_closed);
                if let Err(e) = relay(client, upstream, &path, flags, hold_close) {
                    eprintln!("recording proxy: connection {n}: {e}");
                    done.store(true, Ordering::SeqCst);
                }
            }
        });
        RecordingProxy {
            addr,
            recorded,
            stop,
        }
    }

    /// `rtmp://ADDR/PATH` through the proxy.
    pub fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.addr)
    }

    /// Waits up to `within` until every connection accepted so far was
    /// closed by its client and is fully written, and returns their files
    /// in the order they were accepted. Panics on a time-out.
    pub fn finished_captures(&self, within: Duration) -> Vec<PathBuf> {
        let all_done = wait_for(within, || {
            let list = self.recorded.lock().ok()?;
            list.iter()
                .all(|r| r.done.load(Ordering::SeqCst))
                .then(|| list.iter().map(|r| r.path.clone()).collect::<Vec<_>>())
        });
        all_done.unwrap_or_else(|| {
            panic!("the proxied connections did not all close within {within:?}")
        })
    }

    /// Whether every connection's side towards the server is still open
    /// (the client may have closed its own: see `hold_close`).
    pub fn upstream_open(&self) -> bool {
        self.recorded.lock().is_ok_and(|list| {
            list.iter()
                .all(|r| !r.upstream_closed.load(Ordering::SeqCst))
        })
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Connects to `upstream` and relays both ways on two threads; the
/// client-to-server thread also appends to `path`, sets `done` when the
/// client has closed its side, and `hold_close` later closes the side
/// towards the server and sets `upstream_closed`.
fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    path: &Path,
    (done, upstream_closed): (Arc<AtomicBool>, Arc<AtomicBool>),
    hold_close: Duration,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let mut file = File::create(path)?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match client_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let Some(bytes) = buf.get(..n) else { break };
                    if file.write_all(bytes).is_err() || server_out.write_all(bytes).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = file.flush();
        done.store(true, Ordering::SeqCst);
        std::thread::sleep(hold_close);
        let _ = server_out.shutdown(Shutdown::Write);
        upstream_closed.store(true, Ordering::SeqCst);
    });
    let (mut server_in, mut client_out) = (server, client);
    std::thread::spawn(move || {
        let _ = io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Write);
    });
    Ok(())
}

/// `tern trace FILE --direction c2s`: one line per message a client sent
/// (see `tern_core`'s trace module for the format). Panics if it fails.
pub fn trace_client_bytes(file: &Path) -> Vec<String> {
    let output = Command::new(tern_binary())
        .arg("trace")
        .arg(file)
        .args(["--direction", "c2s"])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run tern trace");
    assert!(
        output.status.success(),
        "tern trace {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
