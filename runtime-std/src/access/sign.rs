//! `tern sign`: a signed URL for an app with a `secret`.

use tern_core::access::token;

/// Signs `url` (`rtmp://host/app[/room…]/stream` or
/// `ws://host:port/app[/room…]`) for `expires_in` seconds from `now` (Unix
/// seconds): the URL's path is what is signed (docs/security.md). Returns
/// the URL with `token` and `expires` appended to its query.
pub fn sign_url(url: &str, secret: &[u8], now: u64, expires_in: u64) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not a URL (want rtmp://host/app/stream)"))?;
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (authority_path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    let path = authority_path
        .split_once('/')
        .map(|(_, p)| p.trim_matches('/'))
        .unwrap_or_default();
    if path.is_empty() {
        return Err(format!("{url:?} has no path: want {scheme}://host/app/…"));
    }
    if query.is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv.split('=').next(), Some("token" | "expires" | "scope")))
    }) {
        return Err(format!(
            "{url:?} already has token, expires or scope in its query (rooms must be in the path)"
        ));
    }
    let expires = now.saturating_add(expires_in);
    let signature = token::sign(secret, path, expires);
    let mut out = format!("{scheme}://{authority_path}");
    match query {
        Some(q) if !q.is_empty() => out.push_str(&format!("?{q}&")),
        _ => out.push('?'),
    }
    out.push_str(&format!("token={signature}&expires={expires}"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_path() {
        let url = sign_url(
            "rtmp://127.0.0.1:1935/live/cam",
            b"s3cret",
            1_700_000_000 - 60,
            60,
        )
        .unwrap();
        assert_eq!(
            url,
            "rtmp://127.0.0.1:1935/live/cam?token=1668cb0b4b6279a5d3e136284f03b343b45ad3c7829c4f7a2d9eb50df2506373&expires=1700000000"
        );
        let ws = sign_url("ws://h:8081/chat/room1?x=1", b"k", 0, 10).unwrap();
        assert!(ws.starts_with("ws://h:8081/chat/room1?x=1&token="), "{ws}");
        assert!(ws.ends_with("&expires=10"));
        assert!(
            token::verify(
                b"k",
                "chat/room1",
                ws.split("token=").nth(1).map(|t| &t[..64]),
                Some("10"),
                0
            )
            .is_ok()
        );
        assert!(sign_url("rtmp://h", b"k", 0, 1).is_err());
        assert!(sign_url("cam", b"k", 0, 1).is_err());
        assert!(sign_url("rtmp://h/live/cam?scope=r", b"k", 0, 1).is_err());
    }
}
