//! The `tern` binary: parses the command line and dispatches.

use clap::Parser;
use std::process::ExitCode;
use tern_runtime_std::cli::{Cli, Command, ServeArgs, check_config};
use tern_runtime_std::logging::{self, FilterSource};

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
        Some(Command::So(_)) => not_implemented("tern so"),
        Some(Command::Trace(_)) => not_implemented("tern trace"),
    }
}

fn not_implemented(what: &str) -> ExitCode {
    eprintln!("tern: {what}: not implemented yet");
    ExitCode::from(2)
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
    match runtime.block_on(tern_runtime_std::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern: {e}");
            ExitCode::FAILURE
        }
    }
}
