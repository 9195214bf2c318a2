//! Scope names: `/app[/room[/sub…]]`, validated once, then trusted.
//!
//! A scope path is built only from segments that match
//! `[A-Za-z0-9_.-]{1,64}` and are not `.` or `..`, so it is safe to use as a
//! file path component (the file store relies on this) and as a map key.
//!
//! Room resolution (DESIGN.md §4): the room path is the path segments after
//! the app, followed by the segments of the `scope` query parameter. So
//! `app/room`, `app?scope=room`, `app/a?scope=b` (→ `/app/a/b`) all resolve
//! the same way for RTMP (`connect.app` / `tcUrl`) and WebSocket (request
//! target).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest segment accepted.
pub const MAX_SEGMENT_LEN: usize = 64;

/// Why a scope or object name was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// No app segment at all.
    Empty,
    /// A segment is longer than [`MAX_SEGMENT_LEN`].
    SegmentTooLong { len: usize },
    /// A segment has a character outside `[A-Za-z0-9_.-]`.
    BadCharacter { segment: String },
    /// A segment is `.` or `..`.
    DotSegment,
    /// More room segments than allowed.
    TooDeep { max: usize },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("empty scope name (no application)"),
            NameError::SegmentTooLong { len } => write!(
                f,
                "name segment is {len} bytes long, at most {MAX_SEGMENT_LEN} allowed"
            ),
            NameError::BadCharacter { segment } => write!(
                f,
                "name segment {segment:?} has a character outside [A-Za-z0-9_.-]"
            ),
            NameError::DotSegment => f.write_str("name segment '.' or '..' is not allowed"),
            NameError::TooDeep { max } => write!(f, "scope is nested deeper than {max} rooms"),
        }
    }
}

impl core::error::Error for NameError {}

/// Checks one segment (also used for shared-object and stream names).
pub fn validate_segment(segment: &str) -> Result<(), NameError> {
    if segment.is_empty() {
        return Err(NameError::Empty);
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(NameError::SegmentTooLong { len: segment.len() });
    }
    if segment == "." || segment == ".." {
        return Err(NameError::DotSegment);
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(NameError::BadCharacter {
            segment: String::from(segment),
        });
    }
    Ok(())
}

/// A validated scope path: an app and zero or more room segments.
/// Ordered so that a scope sorts directly before its children.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopePath {
    /// `/app/room/sub`, always starting with `/`, never ending with one.
    path: String,
}

impl ScopePath {
    /// The scope of an application itself.
    pub fn app(app: &str) -> Result<ScopePath, NameError> {
        validate_segment(app)?;
        let mut path = String::with_capacity(app.len() + 1);
        path.push('/');
        path.push_str(app);
        Ok(ScopePath { path })
    }

    /// Resolves an app string and an optional query as RTMP's `connect.app`
    /// or a WebSocket request path gives them: `app[/room…][?…scope=a/b…]`.
    /// Empty segments (from `//` or a trailing `/`) are skipped. `max_depth`
    /// bounds the number of room segments.
    pub fn resolve(target: &str, max_depth: usize) -> Result<ScopePath, NameError> {
        let (path_part, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let mut segments = path_part.split('/').filter(|s| !s.is_empty());
        let app = segments.next().ok_or(NameError::Empty)?;
        let mut scope = ScopePath::app(app)?;
        let from_query = query
            .and_then(|q| query_param(q, "scope"))
            .into_iter()
            .flat_map(|v| v.split('/'))
            .filter(|s| !s.is_empty());
        let mut depth = 0;
        for segment in segments.chain(from_query) {
            depth += 1;
            if depth > max_depth {
                return Err(NameError::TooDeep { max: max_depth });
            }
            scope = scope.child(segment)?;
        }
        Ok(scope)
    }

    /// The child scope `self/segment`.
    pub fn child(&self, segment: &str) -> Result<ScopePath, NameError> {
        validate_segment(segment)?;
        let mut path = String::with_capacity(self.path.len() + 1 + segment.len());
        path.push_str(&self.path);
        path.push('/');
        path.push_str(segment);
        Ok(ScopePath { path })
    }

    /// The enclosing scope, or `None` for an app scope.
    pub fn parent(&self) -> Option<ScopePath> {
        let cut = self.path.rfind('/')?;
        if cut == 0 {
            return None;
        }
        let parent = self.path.get(..cut)?;
        Some(ScopePath {
            path: String::from(parent),
        })
    }

    /// The application name (first segment).
    pub fn app_name(&self) -> &str {
        self.segments().next().unwrap_or_default()
    }

    /// The segments, app first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('/').filter(|s| !s.is_empty())
    }

    /// Number of room segments below the app.
    pub fn depth(&self) -> usize {
        self.segments().count().saturating_sub(1)
    }

    /// True for the scope of an application itself.
    pub fn is_app(&self) -> bool {
        self.depth() == 0
    }

    /// `/app/room`.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// True if `self` is a strict descendant of `other`.
    pub fn is_within(&self, other: &ScopePath) -> bool {
        self.path.len() > other.path.len()
            && self.path.starts_with(other.path.as_str())
            && self.path.as_bytes().get(other.path.len()) == Some(&b'/')
    }
}

impl fmt::Display for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl fmt::Debug for ScopePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopePath({})", self.path)
    }
}

/// The value of the first `key=value` pair named `key` in a query string
/// (`a=1&b=2`), without percent-decoding (scope segments never need it).
pub fn query_param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Splits `target` at the first `?` into path and query (query may be empty).
pub fn split_query(target: &str) -> (&str, &str) {
    target.split_once('?').unwrap_or((target, ""))
}

/// Collects the segments of a scope path (for callers that need owned parts).
pub fn segments_owned(path: &ScopePath) -> Vec<String> {
    path.segments().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_naming_options_resolve_to_one_scope() {
        let want = ScopePath::resolve("chat/room1", 4).unwrap();
        assert_eq!(want.as_str(), "/chat/room1");
        for target in [
            "chat/room1",
            "chat?scope=room1",
            "chat/?scope=room1",
            "/chat/room1/",
            "chat?x=1&scope=room1",
        ] {
            assert_eq!(ScopePath::resolve(target, 4).unwrap(), want, "{target}");
        }
        // mixed: path rooms first, then the query's
        assert_eq!(
            ScopePath::resolve("chat/a?scope=b/c", 4).unwrap().as_str(),
            "/chat/a/b/c"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(ScopePath::resolve("", 4), Err(NameError::Empty));
        assert_eq!(ScopePath::resolve("?scope=x", 4), Err(NameError::Empty));
        assert_eq!(ScopePath::resolve("chat/..", 4), Err(NameError::DotSegment));
        assert!(matches!(
            ScopePath::resolve("chat/a b", 4),
            Err(NameError::BadCharacter { .. })
        ));
        assert_eq!(
            ScopePath::resolve("chat/a/b/c", 2),
            Err(NameError::TooDeep { max: 2 })
        );
        let long = "x".repeat(65);
        assert_eq!(
            validate_segment(&long),
            Err(NameError::SegmentTooLong { len: 65 })
        );
    }

    #[test]
    fn parents_and_children() {
        let room = ScopePath::resolve("chat/a/b", 4).unwrap();
        let parent = room.parent().unwrap();
        assert_eq!(parent.as_str(), "/chat/a");
        assert_eq!(parent.parent().unwrap().as_str(), "/chat");
        assert!(parent.parent().unwrap().parent().is_none());
        assert!(room.is_within(&parent));
        assert!(!parent.is_within(&room));
        assert!(
            !ScopePath::resolve("chat/ab", 4)
                .unwrap()
                .is_within(&ScopePath::resolve("chat/a", 4).unwrap())
        );
        assert_eq!(room.app_name(), "chat");
        assert_eq!(room.depth(), 2);
    }
}
