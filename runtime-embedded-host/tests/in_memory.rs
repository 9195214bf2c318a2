//! Two embassy-net stacks joined in memory (no privileges): tern's embedded
//! server on one, two RTMP clients (the core's `ClientConnection` over
//! embassy `TcpSocket`s) and a WebSocket client (raw RFC 6455 frames from
//! `ws_frames`, JSON protocol v1) on the other. All three connect to the
//! same room and use one shared object; each RTMP client sees the other's
//! change, the WebSocket client sees both, and the RTMP clients see the
//! WebSocket client's.
//!
//! Everything runs on one embassy executor (driver-channel uses
//! `NoopRawMutex`) in a thread of its own; the test thread waits for the
//! scenario's verdict with a deadline, so a hang fails instead of blocking.

use embassy_executor::Executor;
use embassy_net::driver::HardwareAddress;
use embassy_net::tcp::TcpSocket;
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as channel;
use embassy_time::{Duration, Timer, with_timeout};
use static_cell::StaticCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use tern_core::amf0::Value;
use tern_core::message::SoEvent;
use tern_core::rtmp::handshake::RANDOM_LEN;
use tern_core::rtmp::{ClientConfig, ClientConnection, ClientEvent};
use tern_runtime_embedded::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER, Server, now};
use tern_runtime_embedded_host::ws_frames;

const MTU: usize = 1514;
/// Slots 0..2 serve RTMP, 2..4 WebSocket (also the client stack's sockets).
const RTMP_SLOTS: usize = 2;
const SLOTS: usize = 4;
const SERVER_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
const CLIENT_IP: Ipv4Address = Ipv4Address::new(192, 168, 69, 2);
/// How long any one expected event may take.
const STEP: Duration = Duration::from_secs(5);

type Tern = Server<SLOTS>;
type Device = channel::Device<'static, MTU>;

#[embassy_executor::task(pool_size = 2)]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// One direction of the wire: frames the `from` stack sends arrive at the
/// `to` stack.
#[embassy_executor::task(pool_size = 2)]
async fn wire_task(
    mut from: channel::TxRunner<'static, MTU>,
    mut to: channel::RxRunner<'static, MTU>,
) -> ! {
    loop {
        let frame = from.tx_buf().await;
        let slot = to.rx_buf().await;
        let n = frame.len().min(slot.len());
        slot[..n].copy_from_slice(&frame[..n]);
        to.rx_done(n);
        from.tx_done();
    }
}

#[embassy_executor::task(pool_size = RTMP_SLOTS)]
async fn rtmp_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
    let mut rx = [0; DEFAULT_RX_BUFFER];
    let mut tx = [0; DEFAULT_TX_BUFFER];
    server.run_rtmp(stack, slot, &mut rx, &mut tx).await
}

#[embassy_executor::task(pool_size = SLOTS - RTMP_SLOTS)]
async fn ws_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
    let mut rx = [0; DEFAULT_RX_BUFFER];
    let mut tx = [0; DEFAULT_TX_BUFFER];
    server.run_ws(stack, slot, &mut rx, &mut tx).await
}

#[embassy_executor::task]
async fn hub_timers(server: &'static Tern) -> ! {
    server.run_hub_timers().await
}

static DONE: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn scenario(
    server: &'static Tern,
    client_stack: Stack<'static>,
    verdict: mpsc::Sender<Result<String, String>>,
) {
    let result = run_scenario(server, client_stack).await;
    let _ = verdict.send(result);
    DONE.store(true, Ordering::SeqCst);
}

/// A stack on one end of an in-memory wire.
fn stack(
    device: Device,
    address: Ipv4Address,
    resources: &'static mut StackResources<SLOTS>,
    seed: u64,
) -> (Stack<'static>, Runner<'static, Device>) {
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(address, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    embassy_net::new(device, config, resources, seed)
}

#[test]
fn rtmp_and_websocket_clients_share_an_object_over_embassy_net() {
    let started = std::time::Instant::now();
    let (verdict_tx, verdict_rx) = mpsc::channel();
    std::thread::spawn(move || {
        static STATES: StaticCell<[channel::State<MTU, 4, 4>; 2]> = StaticCell::new();
        static RESOURCES: StaticCell<[StackResources<SLOTS>; 2]> = StaticCell::new();
        static SERVER: StaticCell<Tern> = StaticCell::new();
        static EXECUTOR: StaticCell<Executor> = StaticCell::new();

        let [state_a, state_b] = STATES.init([channel::State::new(), channel::State::new()]);
        let (runner_a, device_a) =
            channel::new(state_a, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 0xa]));
        let (runner_b, device_b) =
            channel::new(state_b, HardwareAddress::Ethernet([2, 0, 0, 0, 0, 0xb]));
        let (link_a, rx_a, tx_a) = runner_a.split();
        let (link_b, rx_b, tx_b) = runner_b.split();
        link_a.set_link_state(embassy_net::driver::LinkState::Up);
        link_b.set_link_state(embassy_net::driver::LinkState::Up);

        let [res_a, res_b] = RESOURCES.init([StackResources::new(), StackResources::new()]);
        let (server_stack, server_runner) = stack(device_a, SERVER_IP, res_a, 1);
        let (client_stack, client_runner) = stack(device_b, CLIENT_IP, res_b, 2);
        let server: &'static Tern = SERVER.init(Server::new(Config::default()));

        EXECUTOR.init(Executor::new()).run_until(
            |spawner| {
                spawner.spawn(net_task(server_runner).unwrap());
                spawner.spawn(net_task(client_runner).unwrap());
                spawner.spawn(wire_task(tx_a, rx_b).unwrap());
                spawner.spawn(wire_task(tx_b, rx_a).unwrap());
                spawner.spawn(hub_timers(server).unwrap());
                for slot in 0..RTMP_SLOTS {
                    spawner.spawn(rtmp_slot(server, server_stack, slot).unwrap());
                }
                for slot in RTMP_SLOTS..SLOTS {
                    spawner.spawn(ws_slot(server, server_stack, slot).unwrap());
                }
                spawner.spawn(scenario(server, client_stack, verdict_tx).unwrap());
            },
            || DONE.load(Ordering::SeqCst),
        );
    });
    let verdict = verdict_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the scenario did not finish within 60 s");
    match verdict {
        Ok(report) => println!("{report} (in {:?})", started.elapsed()),
        Err(e) => panic!("{e}"),
    }
}

async fn run_scenario(server: &'static Tern, stack: Stack<'static>) -> Result<String, String> {
    stack.wait_config_up().await;
    let (mut rx_a, mut tx_a) = ([0u8; 4096], [0u8; 4096]);
    let (mut rx_b, mut tx_b) = ([0u8; 4096], [0u8; 4096]);
    let mut a = Session::open(stack, &mut rx_a, &mut tx_a, "chat/room1", 1).await?;
    let mut b = Session::open(stack, &mut rx_b, &mut tx_b, "chat/room1", 2).await?;
    let (mut rx_w, mut tx_w) = ([0u8; 4096], [0u8; 4096]);
    let mut w = WsSession::open(stack, &mut rx_w, &mut tx_w, "/chat/room1").await?;

    for (who, session) in [("a", &mut a), ("b", &mut b)] {
        session.conn.so_use("s", false).map_err(|e| e.to_string())?;
        session
            .wait_for(&format!("{who}: use of s answered"), |e| {
                so_events(e).is_some_and(|ev| ev.first() == Some(&SoEvent::UseSuccess))
            })
            .await?;
    }

    w.send_text(r#"{"op":"use","so":"s"}"#).await?;
    w.wait_for("w: sync of s", |t| {
        t.starts_with(r#"{"op":"sync""#) && t.contains(r#""so":"s""#)
    })
    .await?;

    // a sets color; a gets the ack, b and w the change.
    a.conn
        .so_set(
            "s",
            false,
            vec![("color".into(), Value::String("red".into()))],
        )
        .map_err(|e| e.to_string())?;
    a.wait_for("a: color acknowledged", |e| acked(e, "color"))
        .await?;
    b.wait_for("b: sees a's color", |e| {
        changed(e, "color", &Value::String("red".into()))
    })
    .await?;
    w.wait_for("w: sees a's color", |t| {
        t.starts_with(r#"{"op":"change""#)
            && t.contains(r#""key":"color""#)
            && t.contains(r#""value":"red""#)
    })
    .await?;

    // b sets size; b gets the ack, a the change.
    b.conn
        .so_set("s", false, vec![("size".into(), Value::Number(3.0))])
        .map_err(|e| e.to_string())?;
    b.wait_for("b: size acknowledged", |e| acked(e, "size"))
        .await?;
    a.wait_for("a: sees b's size", |e| {
        changed(e, "size", &Value::Number(3.0))
    })
    .await?;
    w.wait_for("w: sees b's size", |t| {
        t.starts_with(r#"{"op":"change""#) && t.contains(r#""key":"size""#) && t.contains(":3")
    })
    .await?;

    // w sets shape; w gets the ack, a and b the change.
    w.send_text(r#"{"op":"set","so":"s","key":"shape","value":"round"}"#)
        .await?;
    w.wait_for("w: shape acknowledged", |t| {
        t.starts_with(r#"{"op":"ack""#) && t.contains(r#""key":"shape""#)
    })
    .await?;
    for (who, session) in [("a", &mut a), ("b", &mut b)] {
        session
            .wait_for(&format!("{who}: sees w's shape"), |e| {
                changed(e, "shape", &Value::String("round".into()))
            })
            .await?;
    }

    let (version, subscribers) = server.with_hub(|hub| {
        hub.shared_objects()
            .find(|o| o.name == "s")
            .map(|o| (o.version, o.subscribers))
            .unwrap_or_default()
    });
    if subscribers != 3 || version < 3 {
        return Err(format!(
            "hub holds s at version {version} with {subscribers} subscribers"
        ));
    }

    // Everyone leaves; the server notices and frees its slots.
    a.close().await;
    b.close().await;
    w.close().await?;
    let gone = with_timeout(STEP, async {
        while server.with_hub(|hub| {
            hub.connection_count(tern_core::rtmp::PROTOCOL)
                + hub.connection_count(tern_core::ws::PROTOCOL)
        }) > 0
        {
            Timer::after_millis(10).await;
        }
    })
    .await;
    if gone.is_err() {
        return Err("the server kept the connections after the clients closed".into());
    }
    let counters = server.counters();
    if counters.accepted != 3 || counters.protocol_errors != 0 {
        return Err(format!("unexpected counters: {counters:?}"));
    }
    Ok(format!(
        "two RTMP clients and a WebSocket client shared s (version {version}); counters {counters:?}"
    ))
}

fn so_events(event: &ClientEvent) -> Option<&[SoEvent]> {
    match event {
        ClientEvent::SharedObject(message) if message.name == "s" => Some(&message.events),
        _ => None,
    }
}

fn acked(event: &ClientEvent, key: &str) -> bool {
    so_events(event).is_some_and(|ev| {
        ev.iter()
            .any(|e| matches!(e, SoEvent::Success { key: k } if k == key))
    })
}

fn changed(event: &ClientEvent, key: &str, value: &Value) -> bool {
    so_events(event).is_some_and(|ev| {
        ev.iter()
            .any(|e| matches!(e, SoEvent::Change { key: k, value: v } if k == key && v == value))
    })
}

/// An RTMP client session over an embassy TCP socket.
struct Session<'a> {
    socket: TcpSocket<'a>,
    conn: ClientConnection,
    events: VecDeque<ClientEvent>,
}

impl<'a> Session<'a> {
    async fn open(
        stack: Stack<'a>,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
        app: &str,
        seed: u8,
    ) -> Result<Session<'a>, String> {
        let mut socket = TcpSocket::new(stack, rx, tx);
        socket.set_timeout(Some(Duration::from_secs(10)));
        socket
            .connect((SERVER_IP, 1935))
            .await
            .map_err(|e| format!("connect to {SERVER_IP}:1935: {e:?}"))?;
        let tc_url = format!("rtmp://{SERVER_IP}/{app}");
        let conn =
            ClientConnection::new(ClientConfig::new(app, tc_url), now(), &[seed; RANDOM_LEN]);
        let mut session = Session {
            socket,
            conn,
            events: VecDeque::new(),
        };
        session
            .wait_for(&format!("client {seed}: connected"), |e| {
                matches!(e, ClientEvent::Connected { .. })
            })
            .await?;
        Ok(session)
    }

    /// Writes what the client queued, then reads once.
    async fn pump(&mut self) -> Result<(), String> {
        while let Some(bytes) = self.conn.poll_transmit() {
            let mut rest: &[u8] = &bytes;
            while !rest.is_empty() {
                let n = self
                    .socket
                    .write(rest)
                    .await
                    .map_err(|e| format!("write: {e:?}"))?;
                rest = &rest[n..];
            }
        }
        let conn = &mut self.conn;
        self.socket
            .read_with(|data| (data.len(), conn.handle_input(now(), data)))
            .await
            .map_err(|e| format!("read: {e:?}"))?
            .map_err(|e| format!("client rejects the server's bytes: {e}"))?;
        self.events.extend(std::iter::from_fn(|| conn.poll_event()));
        Ok(())
    }

    /// Waits for an event matching `wanted`, keeping the others for later.
    async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&ClientEvent) -> bool,
    ) -> Result<ClientEvent, String> {
        let found = with_timeout(STEP, async {
            loop {
                if let Some(at) = self.events.iter().position(&wanted) {
                    return Ok::<_, String>(self.events.remove(at).unwrap());
                }
                self.pump().await?;
            }
        })
        .await;
        match found {
            Ok(result) => result.map_err(|e| format!("{what}: {e}")),
            Err(_) => Err(format!(
                "{what}: not seen within {STEP:?}; events so far: {:?}",
                self.events
            )),
        }
    }

    async fn close(&mut self) {
        self.socket.close();
        let _ = with_timeout(STEP, self.socket.flush()).await;
    }
}

/// A WebSocket client session over an embassy TCP socket, speaking
/// protocol v1 in raw RFC 6455 frames.
struct WsSession<'a> {
    socket: TcpSocket<'a>,
    /// Bytes read and not yet decoded.
    buf: Vec<u8>,
    texts: VecDeque<String>,
    /// Varies the masking key per frame.
    frames_sent: u8,
}

impl<'a> WsSession<'a> {
    /// Connects, upgrades, and waits for the server's `welcome`.
    async fn open(
        stack: Stack<'a>,
        rx: &'a mut [u8],
        tx: &'a mut [u8],
        path: &str,
    ) -> Result<WsSession<'a>, String> {
        let mut socket = TcpSocket::new(stack, rx, tx);
        socket.set_timeout(Some(Duration::from_secs(10)));
        socket
            .connect((SERVER_IP, 8081))
            .await
            .map_err(|e| format!("connect to {SERVER_IP}:8081: {e:?}"))?;
        let mut session = WsSession {
            socket,
            buf: Vec::new(),
            texts: VecDeque::new(),
            frames_sent: 0,
        };
        let request = ws_frames::upgrade_request(&format!("{SERVER_IP}:8081"), path);
        session.write(request.as_bytes()).await?;
        let head = with_timeout(STEP, async {
            loop {
                if let Some(end) = session.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head: Vec<u8> = session.buf.drain(..end + 4).collect();
                    return Ok::<_, String>(String::from_utf8_lossy(&head).into_owned());
                }
                session.read_raw().await?;
            }
        })
        .await
        .map_err(|_| format!("ws: no upgrade answer within {STEP:?}"))??;
        if !head.starts_with("HTTP/1.1 101")
            || !head.contains(ws_frames::EXPECTED_ACCEPT)
            || !head.to_ascii_lowercase().contains("upgrade: websocket")
        {
            return Err(format!("ws: upgrade refused: {head}"));
        }
        session
            .wait_for("w: welcome", |t| {
                t == r#"{"op":"welcome","scope":"/chat/room1"}"#
            })
            .await?;
        Ok(session)
    }

    async fn write(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let n = self
                .socket
                .write(bytes)
                .await
                .map_err(|e| format!("ws write: {e:?}"))?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn next_mask(&mut self) -> [u8; 4] {
        self.frames_sent = self.frames_sent.wrapping_add(1);
        [0x5a, self.frames_sent, 0xc3, !self.frames_sent]
    }

    async fn send_text(&mut self, text: &str) -> Result<(), String> {
        let mask = self.next_mask();
        self.write(&ws_frames::client_text(text, mask)).await
    }

    /// Reads once into `buf`; EOF is an error.
    async fn read_raw(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 1024];
        let n = self
            .socket
            .read(&mut chunk)
            .await
            .map_err(|e| format!("ws read: {e:?}"))?;
        if n == 0 {
            return Err("ws: the server closed the connection".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Decodes every whole frame buffered, reading once first if there is
    /// none: texts are kept, pings answered; a close frame is returned as
    /// `Ok(Some(payload))`.
    async fn pump(&mut self) -> Result<Option<Vec<u8>>, String> {
        if ws_frames::server_frame(&mut self.buf.clone())?.is_none() {
            self.read_raw().await?;
        }
        while let Some((opcode, payload)) = ws_frames::server_frame(&mut self.buf)? {
            match opcode {
                ws_frames::TEXT => self.texts.push_back(
                    String::from_utf8(payload).map_err(|e| format!("ws: text not UTF-8: {e}"))?,
                ),
                ws_frames::PING => {
                    let mask = self.next_mask();
                    self.write(&ws_frames::client_frame(ws_frames::PONG, &payload, mask))
                        .await?;
                }
                ws_frames::CLOSE => return Ok(Some(payload)),
                other => return Err(format!("ws: unexpected opcode {other:#x}")),
            }
        }
        Ok(None)
    }

    /// Waits for a text message matching `wanted`, keeping the others.
    async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let found = with_timeout(STEP, async {
            loop {
                if let Some(at) = self.texts.iter().position(|t| wanted(t)) {
                    return Ok::<_, String>(self.texts.remove(at).unwrap());
                }
                if let Some(close) = self.pump().await? {
                    return Err(format!("server sent close {close:?}"));
                }
            }
        })
        .await;
        match found {
            Ok(result) => result.map_err(|e| format!("{what}: {e}")),
            Err(_) => Err(format!(
                "{what}: not seen within {STEP:?}; messages so far: {:?}",
                self.texts
            )),
        }
    }

    /// Closes with 1000, expects the server's echo, then its FIN (the
    /// server closes TCP first, RFC 6455 §7.1.1).
    async fn close(&mut self) -> Result<(), String> {
        let mask = self.next_mask();
        self.write(&ws_frames::client_frame(
            ws_frames::CLOSE,
            &1000u16.to_be_bytes(),
            mask,
        ))
        .await?;
        let echo = with_timeout(STEP, async {
            loop {
                if let Some(payload) = self.pump().await? {
                    return Ok::<_, String>(payload);
                }
            }
        })
        .await
        .map_err(|_| "w: no close frame within the step".to_string())??;
        if echo.get(..2) != Some(&1000u16.to_be_bytes()[..]) {
            return Err(format!("w: close echoed as {echo:?}"));
        }
        let eof = with_timeout(STEP, async {
            let mut chunk = [0u8; 64];
            while let Ok(n) = self.socket.read(&mut chunk).await {
                if n == 0 {
                    return true;
                }
            }
            true
        })
        .await;
        if eof.is_err() {
            return Err("w: the server kept the TCP connection open after the close".into());
        }
        self.socket.close();
        let _ = with_timeout(STEP, self.socket.flush()).await;
        Ok(())
    }
}
