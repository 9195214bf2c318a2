//! `tern-load`: drives an RTMP server (tern, nginx-rtmp) or Redis with
//! thousands of connections from one thread and prints one JSON line per
//! measurement; `tern-load report` turns those lines into tables.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Duration;
use tern_bench::load_idle::{self, IdleOptions};
use tern_bench::load_media::{self, MediaOptions};
use tern_bench::load_so::{self, HEADER_LEN, SoOptions, Target};
use tern_bench::metrics::MetricsUrl;
use tern_bench::procfs::Procs;
use tern_bench::report;
use tern_bench::session::RtmpUrl;

/// Load generator for tern and its benchmark peers.
#[derive(Debug, Parser)]
#[command(name = "tern-load", version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// One publisher of a synthetic live stream and players in steps.
    Media {
        /// Server URL, e.g. rtmp://127.0.0.1:1935/live.
        #[arg(long)]
        url: String,
        /// Stream name.
        #[arg(long, default_value = "bench")]
        name: String,
        /// Total bitrate in kbit/s (audio included).
        #[arg(long, default_value_t = 2500)]
        bitrate: u64,
        /// Player counts, ascending, comma-separated. The run stops after
        /// the first step that is not sustained or saturates this tool.
        #[arg(long, value_delimiter = ',', default_value = "100")]
        steps: Vec<usize>,
        /// Seconds between reaching a step's player count and measuring.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Seconds measured per step.
        #[arg(long, default_value_t = 8.0)]
        window: f64,
        /// Seconds the publisher streams alone before any player joins; the
        /// second half of it is sampled for the server's RSS with the
        /// stream on (publisher and GOP cache), from which RSS per player
        /// above the stream is counted. 0: not measured.
        #[arg(long, default_value_t = 4.0)]
        stream_baseline: f64,
        /// `/metrics` URL of a tern built with `--features
        /// count-allocations` (http://127.0.0.1:PORT/metrics): records the
        /// server's heap allocations in each window.
        #[arg(long)]
        metrics_url: Option<String>,
        /// Players connect over TLS (RTMPS) to this `host:port` (the
        /// publisher stays on --url); needs --tls-ca.
        #[arg(long, requires = "tls_ca")]
        rtmps_address: Option<String>,
        /// PEM certificate the RTMPS players trust (valid for localhost).
        #[arg(long, requires = "rtmps_address")]
        tls_ca: Option<std::path::PathBuf>,
        /// Players play HTTP-FLV from tern's HTTP port (host:port, e.g.
        /// 127.0.0.1:8081), `GET /{app}/{name}.flv`, instead of RTMP.
        #[arg(long)]
        flv_http: Option<String>,
        /// Chat during video (tern only): this many players also use the
        /// shared object `chat` in the stream's scope, and the publisher
        /// changes it --chat-rate times a second; each step records the
        /// change's latency to those players (p50/p99/max).
        #[arg(long, default_value_t = 0)]
        chat_players: usize,
        /// Changes per second for --chat-players.
        #[arg(long, default_value_t = 10)]
        chat_rate: u32,
        #[command(flatten)]
        common: Common,
    },
    /// K writers and N subscribers of one shared object (or Redis channel).
    ///
    /// On tern the clients are RTMP (--url), WebSocket (--ws-url, tern's
    /// JSON protocol v1) or both: --ws-share of the subscribers and of the
    /// writers (each rounded) use the WebSocket URL, the rest RTMP; both
    /// URLs must name the same scope (app/room).
    So {
        /// RTMP scope URL of a tern server, e.g. rtmp://127.0.0.1:1935/chat/bench.
        #[arg(long, conflicts_with = "redis")]
        url: Option<String>,
        /// WebSocket URL of the same scope on tern's HTTP port, e.g.
        /// ws://127.0.0.1:8081/chat/bench (subprotocol tern.v1).
        #[arg(long, conflicts_with = "redis")]
        ws_url: Option<String>,
        /// The same scope on another node of a tern cluster (repeat for
        /// several): RTMP subscribers and writers are spread round-robin
        /// over --url and these.
        #[arg(long = "also-url", requires = "url")]
        also_urls: Vec<String>,
        /// Share (0..=1) of the subscribers, and of the writers, that are
        /// WebSocket clients. Default: 0 with --url, 1 with --ws-url alone.
        #[arg(long, requires = "ws_url")]
        ws_share: Option<f64>,
        /// Redis address (host:port) to compare with: PUBLISH/SUBSCRIBE.
        #[arg(long)]
        redis: Option<String>,
        /// Shared object (or channel) name.
        #[arg(long, default_value = "bench")]
        so_name: String,
        /// Writers.
        #[arg(long, default_value_t = 10)]
        writers: usize,
        /// Subscribers.
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Changes per second per writer; 0 sends as fast as deliveries allow.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// With --rate 0: changes a writer may have on their way.
        #[arg(long, default_value_t = 4)]
        window: u32,
        /// Value size in bytes (at least 27: writer number and send time).
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Seconds of writing before measuring.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Seconds measured.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[command(flatten)]
        common: Common,
    },
    /// N connections that connect and sit idle (memory per connection).
    Idle {
        /// Server URL, e.g. rtmp://127.0.0.1:1935/live.
        #[arg(long)]
        url: String,
        /// Connections.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Seconds to wait once all are connected before measuring.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Churn for a long time (bench/soak.sh): players joining and leaving,
    /// publishers stopping and restarting, shared-object clients (RTMP and
    /// WebSocket) writing and reconnecting in rooms that come and go.
    /// Prints one JSON line of counts; exits 1 if a shared-object change
    /// was lost or duplicated.
    Soak {
        /// tern's RTMP address, host:port.
        #[arg(long)]
        rtmp: String,
        /// tern's HTTP/WebSocket address, host:port.
        #[arg(long)]
        ws: String,
        /// Seconds of load.
        #[arg(long, default_value_t = 3600)]
        duration: u64,
        /// Players at once.
        #[arg(long, default_value_t = 500)]
        players: usize,
        /// Publishers (one room each).
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Shared-object clients at once (half RTMP, half WebSocket).
        #[arg(long, default_value_t = 200)]
        so_clients: usize,
        /// Rooms of the shared-object clients.
        #[arg(long, default_value_t = 20)]
        so_rooms: usize,
        /// Seconds after which the shared-object rooms get new names.
        #[arg(long, default_value_t = 60)]
        room_generation: u64,
        /// Bitrate of each stream in kbit/s.
        #[arg(long, default_value_t = 300)]
        bitrate: u64,
    },
    /// Prints the comparison tables of JSON record files (or stdin).
    Report {
        /// Files of JSON lines; none: standard input.
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Label of the server in the records (tern, nginx-rtmp, redis).
    #[arg(long, default_value = "tern")]
    label: String,
    /// Server process(es) to measure (CPU from /proc/PID/stat, RSS from
    /// /proc/PID/status); repeat for several, e.g. nginx master and worker.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Media {
            url,
            name,
            bitrate,
            steps,
            settle,
            window,
            stream_baseline,
            metrics_url,
            rtmps_address,
            tls_ca,
            flv_http,
            chat_players,
            chat_rate,
            common,
        } => RtmpUrl::parse(&url)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                let metrics_url = metrics_url
                    .map(|u| MetricsUrl::parse(&u))
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let tls = match (rtmps_address, tls_ca) {
                    (Some(address), Some(ca)) => Some(tern_bench::session::Tls::new(address, &ca)?),
                    _ => None,
                };
                load_media::run(&MediaOptions {
                    url,
                    name,
                    bitrate: bitrate * 1000,
                    steps,
                    settle: secs(settle),
                    window: secs(window),
                    stream_baseline: secs(stream_baseline),
                    label: common.label,
                    server: Procs::new(&common.server_pids),
                    connect_concurrency: common.connect_concurrency,
                    connect_timeout: Duration::from_secs(60),
                    metrics_url,
                    tls,
                    flv_http,
                    chat_players,
                    chat_rate,
                })
                .map(|_| ())
            }),
        Mode::So {
            url,
            ws_url,
            ws_share,
            redis,
            so_name,
            writers,
            subscribers,
            rate,
            window,
            size,
            warmup,
            duration,
            common,
            also_urls,
        } => {
            let more_rtmp = also_urls
                .iter()
                .map(|u| RtmpUrl::parse(u).map_err(|e| format!("--also-url: {e}")))
                .collect::<Result<Vec<_>, _>>();
            let target = match (url, ws_url, redis) {
                (None, None, Some(address)) => Ok(Target::Redis {
                    address,
                    channel: so_name,
                }),
                (url, ws, None) if url.is_some() || ws.is_some() => url
                    .map(|u| RtmpUrl::parse(&u).map_err(|e| format!("--url: {e}")))
                    .transpose()
                    .and_then(|rtmp| {
                        let ws_share = ws_share.unwrap_or(if rtmp.is_some() { 0.0 } else { 1.0 });
                        if !(0.0..=1.0).contains(&ws_share) {
                            return Err("--ws-share must be in 0..=1".to_owned());
                        }
                        if rtmp.is_none() && ws_share < 1.0 {
                            return Err(
                                "--ws-share below 1 needs --url for the RTMP clients".to_owned()
                            );
                        }
                        Ok(Target::Tern {
                            rtmp,
                            ws,
                            ws_share,
                            name: so_name,
                            more_rtmp: more_rtmp.clone()?,
                        })
                    }),
                _ => Err("give --url and/or --ws-url (tern), or --redis".to_owned()),
            };
            target.and_then(|target| {
                if size < HEADER_LEN {
                    return Err(format!("--size must be at least {HEADER_LEN}"));
                }
                load_so::run(&SoOptions {
                    target,
                    writers,
                    subscribers,
                    rate,
                    window,
                    value_bytes: size,
                    warmup: secs(warmup),
                    duration: secs(duration),
                    label: common.label,
                    server: Procs::new(&common.server_pids),
                    connect_concurrency: common.connect_concurrency,
                })
                .map(|_| ())
            })
        }
        Mode::Idle {
            url,
            connections,
            settle,
            common,
        } => RtmpUrl::parse(&url)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                load_idle::run(&IdleOptions {
                    url,
                    connections,
                    settle: secs(settle),
                    label: common.label,
                    server: Procs::new(&common.server_pids),
                    connect_concurrency: common.connect_concurrency,
                })
                .map(|_| ())
            }),
        Mode::Soak {
            rtmp,
            ws,
            duration,
            players,
            publishers,
            so_clients,
            so_rooms,
            room_generation,
            bitrate,
        } => tern_bench::load_soak::run(&tern_bench::load_soak::SoakOptions {
            rtmp,
            ws,
            duration: Duration::from_secs(duration),
            players,
            publishers: publishers.max(1),
            so_clients,
            so_rooms,
            room_generation: Duration::from_secs(room_generation),
            bitrate: bitrate * 1000,
        })
        .and_then(|report| {
            println!(
                "{}",
                serde_json::to_string(&report).map_err(|e| e.to_string())?
            );
            if report.skipped + report.repeated > 0 {
                Err("shared-object changes were lost or duplicated".to_owned())
            } else {
                Ok(())
            }
        }),
        Mode::Report { files } => {
            let text = if files.is_empty() {
                std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())
            } else {
                files.iter().try_fold(String::new(), |mut all, f| {
                    let text =
                        std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                    all.push_str(&text);
                    all.push('\n');
                    Ok(all)
                })
            };
            text.map(|text| print!("{}", report::render(&report::parse_records(&text))))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern-load: {e}");
            ExitCode::FAILURE
        }
    }
}
