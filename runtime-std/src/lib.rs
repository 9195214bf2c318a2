//! tern-runtime-std: the tokio runtime that drives tern-core on servers.
