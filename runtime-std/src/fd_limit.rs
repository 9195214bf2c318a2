//! The process's descriptor limit (`RLIMIT_NOFILE`): raised at start, and
//! checked against what the configuration lets clients open.
//!
//! A server started from a shell keeps the shell's soft limit (often 1024)
//! while the hard limit allows far more; every client costs one descriptor,
//! so the thousand-and-first would be refused with `EMFILE`. Like Go's
//! runtime and nginx's `worker_rlimit_nofile`, tern raises the soft limit
//! to the hard limit before it listens ([`raise_and_report`]). The decision
//! and the warning are described in docs/reliability.md.

use crate::config::Config;
use rlimit::Resource;
use std::io;
use tracing::{info, warn};

/// Descriptors the server keeps for itself beyond client sockets: the two
/// listeners, the runtime's epoll and wakeup descriptors, log output and
/// persistent shared-object files being written.
pub const RESERVED: u64 = 64;

/// Where the soft limit ends up when the hard limit is "unlimited": the
/// kernel refuses a soft `RLIM_INFINITY` for descriptors, and Linux's
/// default `fs.nr_open` is this value.
const UNLIMITED_CAP: u64 = 1 << 20;

/// The descriptor limit before and after [`raise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// Soft limit found at start.
    pub before: u64,
    /// Soft limit the server runs with.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (or to
/// [`UNLIMITED_CAP`] when the hard limit is unlimited). Never lowers it.
pub fn raise() -> io::Result<FdLimit> {
    let (before, hard) = Resource::NOFILE.get()?;
    let target = if hard == rlimit::INFINITY {
        UNLIMITED_CAP.max(before)
    } else {
        hard
    };
    let soft = if before < target {
        match Resource::NOFILE.set(target, hard) {
            Ok(()) => target,
            // A kernel whose fs.nr_open is below the target: keep what we had.
            Err(e) if hard == rlimit::INFINITY => {
                warn!(error = %e, "cannot raise the descriptor limit to {target}");
                before
            }
            Err(e) => return Err(e),
        }
    } else {
        before
    };
    Ok(FdLimit { before, soft, hard })
}

/// Descriptors the configured caps let clients hold at once: the
/// connections one address may open (a load test, a proxy or a NAT in
/// front of the server is one address) plus [`RESERVED`]. Caps that do not
/// bound the total (rooms × connections per room) are not counted.
pub fn implied_by(config: &Config) -> u64 {
    (config.scopes.max_connections_per_address as u64).saturating_add(RESERVED)
}

/// [`raise`]s the limit, logs the limit the server runs with, and warns
/// when it is below [`implied_by`] the configuration.
pub fn raise_and_report(config: &Config) {
    let wanted = implied_by(config);
    match raise() {
        Ok(limit) => {
            info!(
                soft = limit.soft,
                hard = limit.hard,
                was = limit.before,
                "descriptor limit (RLIMIT_NOFILE)"
            );
            if limit.soft < wanted {
                warn!(
                    limit = limit.soft,
                    wanted,
                    "descriptor limit is below scopes.max_connections_per_address + {RESERVED}: \
                     clients past it are refused (raise the hard limit: ulimit -Hn, \
                     LimitNOFILE= in systemd)"
                );
            }
        }
        Err(e) => warn!(error = %e, "cannot read or raise the descriptor limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_reaches_the_hard_limit_and_never_lowers() {
        let limit = raise().unwrap();
        assert!(limit.soft >= limit.before);
        let (soft, hard) = Resource::NOFILE.get().unwrap();
        assert_eq!(soft, limit.soft);
        assert_eq!(hard, limit.hard);
        if hard != rlimit::INFINITY {
            assert_eq!(soft, hard);
        }
        // A second call finds nothing to do.
        let again = raise().unwrap();
        assert_eq!((again.before, again.soft), (soft, soft));
    }

    #[test]
    fn the_caps_imply_connections_per_address_plus_the_reserve() {
        let mut config = Config::default();
        assert_eq!(implied_by(&config), 1_000 + RESERVED);
        config.scopes.max_connections_per_address = 5_000;
        assert_eq!(implied_by(&config), 5_000 + RESERVED);
    }
}
