//! Relay target URLs: `rtmp[s]://host[:port]/app[/room…][/name][?query]`.
//!
//! The first path segment is the app. A push target written with the app
//! alone (`rtmp://host/app`) receives each stream under its own name; with
//! more segments the last one is a fixed stream name and those between are
//! rooms (`connect.app` becomes `app/room…`). The query is kept: it goes on
//! `connect.app` (and the `tcUrl`) and on the published or played name, so
//! a stream key or token written there reaches whichever check the target
//! makes. A pull origin (`pull = "rtmp://origin/app"`) never has a name:
//! it plays the name the local player asked for.

use std::fmt;

/// A parsed relay target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `rtmps://` (TLS) or `rtmp://`.
    pub tls: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (1935 for rtmp, 443 for rtmps unless written).
    pub port: u16,
    /// `app[/room…]`, without the query.
    pub app: String,
    /// A fixed stream name, if the URL has one.
    pub name: Option<String>,
    /// The query without `?` (empty if none).
    pub query: String,
}

/// Why a URL is not a relay target.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `rtmp://` or `rtmps://`.
    Scheme,
    /// No host.
    NoHost,
    /// A port that is not a number from 1 to 65535.
    Port,
    /// No app after the host.
    NoApp,
    /// An empty path segment (`//`), or a character a URL cannot carry
    /// here (white space, control characters).
    Path,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "a relay URL starts with rtmp:// or rtmps://",
            UrlError::NoHost => "the URL has no host",
            UrlError::Port => "the port is not a number from 1 to 65535",
            UrlError::NoApp => "the URL has no app (rtmp://host/app)",
            UrlError::Path => "the URL has an empty path segment or a space/control character",
        })
    }
}

impl std::error::Error for UrlError {}

impl Target {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (tls, rest) = if let Some(rest) = strip_prefix_ci(url, "rtmps://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(url, "rtmp://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Path);
        }
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, query.to_owned()),
            None => (rest, String::new()),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = split_host_port(authority)?;
        let default_port = if tls { 443 } else { 1935 };
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(UrlError::Port),
            },
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.is_empty() {
            return Err(UrlError::NoApp);
        }
        let segments: Vec<&str> = path.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(UrlError::Path);
        }
        let (app, name) = match segments.split_last() {
            Some((last, before)) if !before.is_empty() => {
                (before.join("/"), Some((*last).to_owned()))
            }
            _ => (path.to_owned(), None),
        };
        Ok(Target {
            tls,
            host: host.to_owned(),
            port,
            app,
            name,
            query,
        })
    }

    /// `connect.app`: `app[/room…][?query]`.
    pub fn connect_app(&self) -> String {
        with_query(&self.app, &self.query)
    }

    /// `connect.tcUrl`: the URL up to the app (with the query).
    pub fn tc_url(&self) -> String {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        with_query(
            &format!("{scheme}://{host}:{}/{}", self.port, self.app),
            &self.query,
        )
    }

    /// The name to publish or play for local stream `local`: the URL's
    /// fixed name if it has one, else `local`; with the query.
    pub fn stream_name(&self, local: &str) -> String {
        with_query(self.name.as_deref().unwrap_or(local), &self.query)
    }

    /// `host:port` for connecting (IPv6 in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    /// The URL with the query left out (it may hold a stream key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        write!(f, "{scheme}://{}/{}", self.address(), self.app)?;
        if let Some(name) = &self.name {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

fn with_query(base: &str, query: &str) -> String {
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::NoHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::Port)?),
        };
        return if host.is_empty() {
            Err(UrlError::NoHost)
        } else {
            Ok((host, port))
        };
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        Err(UrlError::NoHost)
    } else {
        Ok((host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_only_targets_take_the_local_name() {
        let t = Target::parse("rtmp://example.com/live").unwrap();
        assert!(!t.tls);
        assert_eq!((t.host.as_str(), t.port), ("example.com", 1935));
        assert_eq!(t.app, "live");
        assert_eq!(t.name, None);
        assert_eq!(t.stream_name("cam"), "cam");
        assert_eq!(t.connect_app(), "live");
        assert_eq!(t.tc_url(), "rtmp://example.com:1935/live");
    }

    #[test]
    fn a_last_segment_is_a_fixed_name_and_middle_ones_are_rooms() {
        let t = Target::parse("rtmps://h:8443/app/room/a/key1?sig=x&e=1").unwrap();
        assert!(t.tls);
        assert_eq!(t.port, 8443);
        assert_eq!(t.app, "app/room/a");
        assert_eq!(t.name.as_deref(), Some("key1"));
        assert_eq!(t.stream_name("cam"), "key1?sig=x&e=1");
        assert_eq!(t.connect_app(), "app/room/a?sig=x&e=1");
        assert_eq!(t.to_string(), "rtmps://h:8443/app/room/a/key1");
        let yt = Target::parse("RTMPS://a.rtmp.youtube.com/live2/abcd-efgh").unwrap();
        assert_eq!((yt.port, yt.app.as_str()), (443, "live2"));
        assert_eq!(yt.name.as_deref(), Some("abcd-efgh"));
    }

    #[test]
    fn ipv6_hosts_and_trailing_slashes() {
        let t = Target::parse("rtmp://[::1]:1936/live/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 1936));
        assert_eq!(t.address(), "[::1]:1936");
        assert_eq!(t.name, None);
        assert_eq!(t.tc_url(), "rtmp://[::1]:1936/live");
    }

    #[test]
    fn broken_urls_say_what_is_wrong() {
        let cases = [
            ("http://h/live", UrlError::Scheme),
            ("rtmp:///live", UrlError::NoHost),
            ("rtmp://h:0/live", UrlError::Port),
            ("rtmp://h:99999/live", UrlError::Port),
            ("rtmp://h:x/live", UrlError::Port),
            ("rtmp://h", UrlError::NoApp),
            ("rtmp://h/", UrlError::NoApp),
            ("rtmp://h/live//x", UrlError::Path),
            ("rtmp://h/li ve", UrlError::Path),
            ("rtmp://[::1/live", UrlError::NoHost),
        ];
        for (url, want) in cases {
            assert_eq!(Target::parse(url), Err(want.clone()), "{url}");
            assert!(!want.to_string().is_empty());
        }
    }
}
