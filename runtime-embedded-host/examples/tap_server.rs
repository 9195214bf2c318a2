//! tern's embedded server on the host: embassy-executor's `platform-std`,
//! embassy-net on a TAP device. The very code a microcontroller runs, with
//! a TAP device standing in for its Ethernet MAC.
//!
//! Set up a network namespace with a TAP device in it (as root), then start
//! the example inside the namespace; clients in the namespace reach it:
//!
//! ```text
//! ip netns add tern
//! ip netns exec tern ip link set lo up
//! ip netns exec tern ip tuntap add name tap0 mode tap
//! ip netns exec tern ip addr add 192.168.69.1/24 dev tap0
//! ip netns exec tern ip link set tap0 up
//! cargo build -p tern-runtime-embedded-host --example tap_server --example ws_watch -p tern-runtime-std --bin tern
//! ip netns exec tern target/debug/examples/tap_server --tap tap0 --address 192.168.69.100/24 &
//! ip netns exec tern target/debug/tern so set rtmp://192.168.69.100:1935/chat/room1 s k '"v"'
//! ip netns exec tern target/debug/examples/ws_watch ws://192.168.69.100:8081/chat/room1 s
//! ip netns del tern
//! ```
//!
//! The Linux side of the TAP is 192.168.69.1; the embassy stack behind it
//! is 192.168.69.100 (`--address`). RTMP is served on `--port` (1935) by
//! 4 slots, WebSocket on `--ws-port` (8081) by 4 more, on one hub. Start the example *inside* the
//! namespace: outside it, `TunTapDevice::new` would quietly create an
//! unconfigured `tap0` in the root namespace. The line
//! `tern-embedded listening on …` is printed once the stack is up and the
//! listeners are in place.

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Timer;
use static_cell::StaticCell;
use std::io::Write;
use std::process::ExitCode;
use tern_runtime_embedded::{Config, DEFAULT_RX_BUFFER, DEFAULT_TX_BUFFER, Server};

/// RTMP connections served at once.
const RTMP_SLOTS: usize = 4;
/// WebSocket connections served at once.
const WS_SLOTS: usize = 4;
const SLOTS: usize = RTMP_SLOTS + WS_SLOTS;
type Tern = Server<SLOTS>;

#[derive(Debug)]
struct Args {
    tap: String,
    address: Ipv4Address,
    prefix: u8,
    port: u16,
    ws_port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        tap: "tap0".into(),
        address: Ipv4Address::new(192, 168, 69, 100),
        prefix: 24,
        port: 1935,
        ws_port: 8081,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--tap" => args.tap = value()?,
            "--address" => {
                let v = value()?;
                let (ip, prefix) = v.split_once('/').unwrap_or((&v, "24"));
                args.address = ip.parse().map_err(|e| format!("--address {v}: {e}"))?;
                args.prefix = prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= 32)
                    .ok_or_else(|| format!("--address {v}: bad prefix length"))?;
            }
            "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--ws-port" => {
                let v = value()?;
                args.ws_port = v.parse().map_err(|e| format!("--ws-port {v}: {e}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: tap_server [--tap tap0] [--address 192.168.69.100/24] \
                     [--port 1935] [--ws-port 8081]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = RTMP_SLOTS)]
async fn rtmp_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
    let mut rx = [0; DEFAULT_RX_BUFFER];
    let mut tx = [0; DEFAULT_TX_BUFFER];
    server.run_rtmp(stack, slot, &mut rx, &mut tx).await
}

#[embassy_executor::task(pool_size = WS_SLOTS)]
async fn ws_slot(server: &'static Tern, stack: Stack<'static>, slot: usize) -> ! {
    let mut rx = [0; DEFAULT_RX_BUFFER];
    let mut tx = [0; DEFAULT_TX_BUFFER];
    server.run_ws(stack, slot, &mut rx, &mut tx).await
}

#[embassy_executor::task]
async fn hub_timers(server: &'static Tern) -> ! {
    server.run_hub_timers().await
}

#[embassy_executor::task]
async fn main_task(spawner: Spawner, args: Args, device: TunTapDevice) {
    static RESOURCES: StaticCell<StackResources<{ SLOTS + 1 }>> = StaticCell::new();
    static SERVER: StaticCell<Tern> = StaticCell::new();

    let net = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(args.address, args.prefix),
        gateway: None,
        dns_servers: Default::default(),
    });
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let (stack, runner) =
        embassy_net::new(device, net, RESOURCES.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).unwrap());

    let config = Config {
        rtmp_port: args.port,
        ws_port: args.ws_port,
        seed,
        ..Config::default()
    };
    let server: &'static Tern = SERVER.init(Server::new(config));
    spawner.spawn(hub_timers(server).unwrap());
    // Slots 0..4 serve RTMP, 4..8 WebSocket.
    for slot in 0..RTMP_SLOTS {
        spawner.spawn(rtmp_slot(server, stack, slot).unwrap());
    }
    for slot in RTMP_SLOTS..SLOTS {
        spawner.spawn(ws_slot(server, stack, slot).unwrap());
    }

    stack.wait_config_up().await;
    // Let every slot reach `accept` before announcing readiness: a SYN
    // that finds no listening socket is refused.
    Timer::after_millis(50).await;
    println!(
        "tern-embedded listening on {addr}:{} (rtmp, {RTMP_SLOTS} slots) and {addr}:{} (websocket, {WS_SLOTS} slots) on {}",
        args.port,
        args.ws_port,
        args.tap,
        addr = args.address,
    );
    let _ = std::io::stdout().flush();

    // Report how connections end, for whoever watches the log.
    let mut last = server.counters();
    loop {
        Timer::after_secs(1).await;
        let now = server.counters();
        if now != last {
            println!("tern-embedded counters: {now:?}");
            let _ = std::io::stdout().flush();
            last = now;
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tap_server: {e}");
            return ExitCode::from(2);
        }
    };
    let device = match TunTapDevice::new(&args.tap) {
        Ok(device) => device,
        Err(e) => {
            eprintln!(
                "tap_server: cannot open TAP device {:?}: {e} (create it first; see the example's docs)",
                args.tap
            );
            return ExitCode::FAILURE;
        }
    };
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    EXECUTOR.init(Executor::new()).run(|spawner| {
        spawner.spawn(main_task(spawner, args, device).unwrap());
    })
}
