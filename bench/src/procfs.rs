//! CPU time and resident memory of processes, from `/proc`.

use std::io;

/// Clock ticks per second of `utime`/`stime` (USER_HZ; 100 on every Linux
/// architecture this runs on, as `getconf CLK_TCK` says).
pub const CLK_TCK: f64 = 100.0;

/// `utime + stime` of `pid` (`"self"` for this process), in seconds.
pub fn cpu_seconds(pid: &str) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_ticks(&stat)
        .map(|ticks| ticks as f64 / CLK_TCK)
        .ok_or_else(|| io::Error::other(format!("cannot parse /proc/{pid}/stat")))
}

/// `utime + stime` in ticks from the text of `/proc/PID/stat`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its closing parenthesis. utime and stime are fields
    // 14 and 15; the first field after the name is field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Seconds the threads of `pid` spent waiting on a run queue (runnable but
/// not running), summed over its threads, from `/proc/PID/task/*/schedstat`.
/// Together with the CPU time this tells whether a process wanted more CPU
/// than it got, which on a machine shared with other jobs is what
/// "saturated" means.
pub fn runqueue_wait_seconds(pid: &str) -> io::Result<f64> {
    if pid.contains("/task/") {
        // One thread.
        let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))?;
        return Ok(parse_schedstat_wait(&text).unwrap_or(0) as f64 / 1e9);
    }
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may exit between listing and reading.
        if let Ok(text) = std::fs::read_to_string(path) {
            ns += parse_schedstat_wait(&text).unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

/// The second field of a schedstat line: run-queue wait in ns.
fn parse_schedstat_wait(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Resident set size (`VmRSS`) of `pid`, in bytes.
pub fn rss_bytes(pid: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss(&status).ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A set of processes measured together (nginx's master and worker, say).
#[derive(Clone, Debug, Default)]
pub struct Procs {
    pids: Vec<String>,
}

/// CPU and memory of a [`Procs`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// When (seconds on the load tool's clock).
    pub at: f64,
    /// `utime + stime`, summed, in seconds.
    pub cpu: f64,
    /// Resident set sizes, summed, in bytes.
    pub rss: u64,
    /// Run-queue waits, summed, in seconds.
    pub wait: f64,
}

impl Procs {
    /// The processes `pids` (may be empty: then every sample is zero).
    pub fn new(pids: &[u32]) -> Self {
        Procs {
            pids: pids.iter().map(u32::to_string).collect(),
        }
    }

    /// This process.
    pub fn this() -> Self {
        Procs {
            pids: vec!["self".to_owned()],
        }
    }

    /// The calling thread only (the load tool's players all run on its
    /// main thread; its publisher thread must not count towards "the load
    /// tool is saturated").
    pub fn this_thread() -> Self {
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| std::process::id().to_string());
        Procs {
            pids: vec![format!("self/task/{tid}")],
        }
    }

    /// True if no process is measured.
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }

    /// Measures now. A process that went away counts as zero.
    pub fn sample(&self, at: f64) -> Sample {
        let mut s = Sample {
            at,
            ..Sample::default()
        };
        for pid in &self.pids {
            s.cpu += cpu_seconds(pid).unwrap_or(0.0);
            s.rss += rss_bytes(pid).unwrap_or(0);
            s.wait += runqueue_wait_seconds(pid).unwrap_or(0.0);
        }
        s
    }
}

impl Sample {
    /// `amount` (seconds of CPU or of waiting) per second of wall time
    /// between `earlier` and `self`; 0 when no time passed.
    fn per_wall_second(&self, earlier: &Sample, amount: f64) -> f64 {
        let wall = self.at - earlier.at;
        if wall <= 0.0 { 0.0 } else { amount / wall }
    }

    /// Fraction of one core used between `earlier` and `self`.
    pub fn core_fraction_since(&self, earlier: &Sample) -> f64 {
        self.per_wall_second(earlier, self.cpu - earlier.cpu)
    }

    /// Fraction of the time between `earlier` and `self` the processes
    /// spent on a run queue: runnable, but another task had the core.
    pub fn wait_fraction_since(&self, earlier: &Sample) -> f64 {
        self.per_wall_second(earlier, self.wait - earlier.wait)
    }

    /// Fraction of the time between `earlier` and `self` the processes
    /// wanted a core: running or waiting for one. Near 1 (or above, for
    /// several busy threads) means CPU-bound, whatever share they got.
    pub fn demand_since(&self, earlier: &Sample) -> f64 {
        self.core_fraction_since(earlier) + self.wait_fraction_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_names() {
        let stat = "4242 (we ird) (name) R 1 4242 4242 0 -1 4194304 120 0 0 0 \
                    250 37 0 0 20 0 1 0 12345 10000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(287));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_rss(status), Some(2048 * 1024));
        assert_eq!(parse_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_schedstat() {
        assert_eq!(parse_schedstat_wait("123 456 7\n"), Some(456));
        assert_eq!(parse_schedstat_wait("123"), None);
    }

    #[test]
    fn measures_this_process() {
        let s = Procs::this().sample(0.0);
        assert!(s.rss > 0);
        assert!(s.cpu >= 0.0);
        assert!(Procs::new(&[]).sample(0.0).rss == 0);
        let t = Procs::this_thread().sample(0.0);
        assert!(t.rss > 0);
        assert!(t.cpu >= 0.0 && t.wait >= 0.0);
    }
}
