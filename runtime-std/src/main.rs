//! The `tern` binary: parses the command line and dispatches.

use clap::Parser;
use std::process::ExitCode;
use tern_runtime_std::cli::{
    Cli, Command, Direction, ServeArgs, SoCommand, TraceArgs, check_config,
};
use tern_runtime_std::logging::{self, FilterSource};
use tern_runtime_std::tools;

/// Counts heap allocations for `/metrics` (docs/benchmarks-allocations.md).
#[cfg(feature = "count-allocations")]
#[global_allocator]
static ALLOCATOR: tern_runtime_std::alloc_count::CountingAlloc =
    tern_runtime_std::alloc_count::CountingAlloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(&ServeArgs::default()),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::CheckConfig { file }) => {
            match check_config(&file, &mut std::io::stdout().lock()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("tern: cannot write the report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::So(command)) => so(command),
        Some(Command::Trace(args)) => trace(&args),
        Some(Command::Sign(args)) => match args.run(tern_runtime_std::access::unix_now()) {
            Ok(url) => {
                println!("{url}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tern sign: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn current_thread() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("tern: cannot start the runtime: {e}");
            None
        }
    }
}

fn so(command: SoCommand) -> ExitCode {
    let Some(runtime) = current_thread() else {
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout().lock();
    let result = match command {
        SoCommand::Watch {
            persistent,
            rtmp_url,
            so_name,
        } => runtime.block_on(tools::so_watch(&rtmp_url, &so_name, persistent, &mut out)),
        SoCommand::Set {
            persistent,
            rtmp_url,
            so_name,
            key,
            json_value,
        } => runtime
            .block_on(tools::so_set(
                &rtmp_url,
                &so_name,
                persistent,
                &key,
                &json_value,
                &mut out,
            ))
            .map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern so: {e}");
            ExitCode::FAILURE
        }
    }
}

fn trace(args: &TraceArgs) -> ExitCode {
    let bytes = match std::fs::read(&args.file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("tern trace: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let direction = args.direction.map(|d| match d {
        Direction::C2s => tern_core::trace::Direction::ClientToServer,
        Direction::S2c => tern_core::trace::Direction::ServerToClient,
    });
    match tools::trace(&bytes, direction, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern trace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match args.build_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let source = if args.log.is_some() {
        FilterSource::Explicit
    } else {
        FilterSource::Default
    };
    if let Err(e) = logging::init(&config.logging.level, source) {
        eprintln!("tern: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tern")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tern: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "tern starting");
    tern_runtime_std::fd_limit::raise_and_report(&config);
    match runtime.block_on(tern_runtime_std::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}
