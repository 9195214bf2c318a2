//! Reads the heap counters of a `count-allocations` build of tern from its
//! `/metrics` page: a plain HTTP/1.1 GET over a [`TcpStream`], read to the
//! end (tern answers every request with `Connection: close`).

use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Counter of heap allocations (alloc + realloc calls).
pub const ALLOCATIONS: &str = "tern_heap_allocations_total";
/// Counter of bytes asked of the allocator.
pub const ALLOCATED_BYTES: &str = "tern_heap_allocated_bytes_total";

/// Largest response read (tern's `/metrics` is about 2 KB).
const MAX_RESPONSE: usize = 1 << 20;

/// How long one GET may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `http://host:port/path`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsUrl {
    /// `host:port`, as given (also the `Host` header).
    pub authority: String,
    /// `/metrics`.
    pub path: String,
}

impl MetricsUrl {
    /// Parses `http://host[:port][/path]` (port 80 and path `/metrics` by
    /// default). No TLS, no user info.
    pub fn parse(url: &str) -> Result<Self, MetricsError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| MetricsError::Url(url.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/metrics"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(MetricsError::Url(url.to_owned()));
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(MetricsUrl {
            authority,
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for MetricsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// The two heap counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapCounters {
    /// `tern_heap_allocations_total`.
    pub allocations: u64,
    /// `tern_heap_allocated_bytes_total`.
    pub allocated_bytes: u64,
}

impl HeapCounters {
    /// Finds both counters in a Prometheus text body.
    pub fn parse(body: &str) -> Result<Self, MetricsError> {
        let value = |name: &str| {
            body.lines()
                .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .find_map(|v| v.trim().parse::<u64>().ok())
                .ok_or(MetricsError::Missing(name.to_owned()))
        };
        Ok(HeapCounters {
            allocations: value(ALLOCATIONS)?,
            allocated_bytes: value(ALLOCATED_BYTES)?,
        })
    }

    /// What was counted between `earlier` and `self`.
    pub fn since(&self, earlier: &HeapCounters) -> HeapCounters {
        HeapCounters {
            allocations: self.allocations.saturating_sub(earlier.allocations),
            allocated_bytes: self.allocated_bytes.saturating_sub(earlier.allocated_bytes),
        }
    }
}

/// Why the counters could not be read.
#[derive(Debug)]
pub enum MetricsError {
    /// Not an `http://host:port/path` URL.
    Url(String),
    /// Connecting, writing or reading failed (or timed out).
    Io(std::io::Error),
    /// Not a `200` response.
    Status(String),
    /// The counter is not in the body: tern was built without the
    /// `count-allocations` feature.
    Missing(String),
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::Url(u) => write!(f, "not an http://host:port/path URL: {u}"),
            MetricsError::Io(e) => write!(f, "metrics request failed: {e}"),
            MetricsError::Status(s) => write!(f, "metrics request answered {s:?}"),
            MetricsError::Missing(name) => write!(
                f,
                "no {name} in the metrics (is tern built with --features count-allocations?)"
            ),
        }
    }
}

impl std::error::Error for MetricsError {}

/// GETs the page and parses the two counters.
pub async fn fetch(url: &MetricsUrl) -> Result<HeapCounters, MetricsError> {
    let response = tokio::time::timeout(TIMEOUT, get(url))
        .await
        .map_err(|_| {
            MetricsError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in 5 s",
            ))
        })?
        .map_err(MetricsError::Io)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| MetricsError::Status("no complete response head".to_owned()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(MetricsError::Status(status.to_owned()));
    }
    HeapCounters::parse(body)
}

async fn get(url: &MetricsUrl) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(&url.authority).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut response)
        .await?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            MetricsUrl::parse("http://127.0.0.1:8080/metrics").unwrap(),
            MetricsUrl {
                authority: "127.0.0.1:8080".into(),
                path: "/metrics".into()
            }
        );
        let bare = MetricsUrl::parse("http://localhost").unwrap();
        assert_eq!(bare.to_string(), "http://localhost:80/metrics");
        assert!(MetricsUrl::parse("https://x/metrics").is_err());
        assert!(MetricsUrl::parse("http:///metrics").is_err());
    }

    #[test]
    fn parses_counters_and_names_the_missing_one() {
        let body = "# HELP tern_heap_allocations_total Heap allocations.\n\
                    # TYPE tern_heap_allocations_total counter\n\
                    tern_heap_allocations_total 1234\n\
                    tern_heap_allocated_bytes_total_x 9\n\
                    tern_heap_allocated_bytes_total 567890\n";
        let c = HeapCounters::parse(body).unwrap();
        assert_eq!(
            c,
            HeapCounters {
                allocations: 1234,
                allocated_bytes: 567_890
            }
        );
        assert_eq!(
            c.since(&HeapCounters {
                allocations: 1000,
                allocated_bytes: 1
            }),
            HeapCounters {
                allocations: 234,
                allocated_bytes: 567_889
            }
        );
        let err = HeapCounters::parse("tern_scopes 0\n").unwrap_err();
        assert!(err.to_string().contains(ALLOCATIONS), "{err}");
    }

    #[tokio::test]
    async fn fetches_from_a_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /metrics HTTP/1.1\r\n"));
            s.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n\
                  tern_heap_allocations_total 7\ntern_heap_allocated_bytes_total 70\n",
            )
            .await
            .unwrap();
        });
        let url = MetricsUrl::parse(&format!("http://{addr}/metrics")).unwrap();
        assert_eq!(
            fetch(&url).await.unwrap(),
            HeapCounters {
                allocations: 7,
                allocated_bytes: 70
            }
        );
        server.await.unwrap();
    }
}
