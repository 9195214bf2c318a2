//! HTTP callbacks: what the runtime is asked to call, and what it reports.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The callbacks, named as nginx-rtmp names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookKind {
    /// `on_connect` (`call=connect`): may the client connect?
    Connect,
    /// `on_publish` (`call=publish`): may it publish this name?
    Publish,
    /// `on_play` (`call=play`): may it play this name?
    Play,
    /// `on_done` (`call=done`): a publish or play ended. Reply ignored.
    Done,
    /// `on_publish_done` (`call=publish_done`). Reply ignored.
    PublishDone,
    /// `on_play_done` (`call=play_done`). Reply ignored.
    PlayDone,
    /// `on_update` (`call=update_publish` / `update_play`): every
    /// `notify_update_interval_secs` while it goes on; non-2xx drops it.
    Update,
    /// `on_record_done` (`call=record_done`): a recorded file is complete
    /// (made by the runtime's recorder, not by a connection's gate).
    /// Reply ignored.
    RecordDone,
}

impl HookKind {
    /// The config key (`on_publish`).
    pub fn config_key(self) -> &'static str {
        match self {
            HookKind::Connect => "on_connect",
            HookKind::Publish => "on_publish",
            HookKind::Play => "on_play",
            HookKind::Done => "on_done",
            HookKind::PublishDone => "on_publish_done",
            HookKind::PlayDone => "on_play_done",
            HookKind::Update => "on_update",
            HookKind::RecordDone => "on_record_done",
        }
    }

    /// True if the reply matters (the `*_done` calls only inform).
    pub fn wants_reply(self) -> bool {
        !matches!(
            self,
            HookKind::Done | HookKind::PublishDone | HookKind::PlayDone | HookKind::RecordDone
        )
    }
}

/// Callback URLs of one app (`None`: not called).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookUrls {
    /// `on_connect`.
    pub on_connect: Option<String>,
    /// `on_publish`.
    pub on_publish: Option<String>,
    /// `on_play`.
    pub on_play: Option<String>,
    /// `on_done`.
    pub on_done: Option<String>,
    /// `on_publish_done`.
    pub on_publish_done: Option<String>,
    /// `on_play_done`.
    pub on_play_done: Option<String>,
    /// `on_update`.
    pub on_update: Option<String>,
    /// `on_record_done`.
    pub on_record_done: Option<String>,
}

impl HookUrls {
    /// The URL for `kind`, if configured.
    pub fn url(&self, kind: HookKind) -> Option<&str> {
        match kind {
            HookKind::Connect => self.on_connect.as_deref(),
            HookKind::Publish => self.on_publish.as_deref(),
            HookKind::Play => self.on_play.as_deref(),
            HookKind::Done => self.on_done.as_deref(),
            HookKind::PublishDone => self.on_publish_done.as_deref(),
            HookKind::PlayDone => self.on_play_done.as_deref(),
            HookKind::Update => self.on_update.as_deref(),
            HookKind::RecordDone => self.on_record_done.as_deref(),
        }
    }

    /// True if any callback is configured.
    pub fn any(&self) -> bool {
        [
            &self.on_connect,
            &self.on_publish,
            &self.on_play,
            &self.on_done,
            &self.on_publish_done,
            &self.on_play_done,
            &self.on_update,
            &self.on_record_done,
        ]
        .iter()
        .any(|u| u.is_some())
    }
}

/// Identifies a call within its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// An HTTP callback the runtime should make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookCall {
    /// Identifies the call to [`Gate::resolve`](super::Gate::resolve).
    pub id: CallId,
    /// The application whose callback this is (its HTTP settings apply).
    pub app: String,
    /// Which callback.
    pub kind: HookKind,
    /// Where to.
    pub url: String,
    /// The fields, in order (form-encode them: [`HookCall::form`]).
    pub fields: Vec<(String, String)>,
}

impl HookCall {
    /// The fields as `application/x-www-form-urlencoded` (the POST body,
    /// or the query for `notify_method = "get"`).
    pub fn form(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            form_escape(k, &mut out);
            out.push('=');
            form_escape(v, &mut out);
        }
        out
    }

    /// The value of the first field named `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn form_escape(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(
                    HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
                ));
                out.push(char::from(
                    HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
                ));
            }
        }
    }
}

/// Decodes `%XX` and `+` of a query component (bad escapes stay as they
/// are; invalid UTF-8 becomes U+FFFD).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| core::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What came of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookReply {
    /// An HTTP reply: its status and `Location` header.
    Status {
        /// HTTP status code.
        code: u16,
        /// The `Location` header, if any.
        location: Option<String>,
    },
    /// No usable reply: refused connection, timeout, too many calls in
    /// flight, a broken response.
    Failed(String),
}

impl fmt::Display for HookReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookReply::Status {
                code,
                location: Some(l),
            } => write!(f, "HTTP {code} (Location: {l})"),
            HookReply::Status { code, .. } => write!(f, "HTTP {code}"),
            HookReply::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What a receiver decodes is what the gate put in, whatever the
        /// characters; decoding any text never panics.
        #[test]
        fn form_fields_survive_encoding(
            fields in proptest::collection::vec((".{0,12}", ".{0,24}"), 0..6),
            junk in ".{0,40}",
        ) {
            let call = HookCall {
                id: CallId(1),
                app: String::from("live"),
                kind: HookKind::Connect,
                url: String::from("http://x/"),
                fields: fields.clone(),
            };
            let form = call.form();
            let decoded: Vec<(String, String)> = if form.is_empty() {
                Vec::new()
            } else {
                form.split('&')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (percent_decode(k), percent_decode(v))
                    })
                    .collect()
            };
            prop_assert_eq!(decoded, fields);
            let _ = percent_decode(&junk);
        }
    }

    #[test]
    fn form_round_trip() {
        let call = HookCall {
            id: CallId(1),
            app: String::from("live"),
            kind: HookKind::Publish,
            url: String::from("http://x/"),
            fields: alloc::vec![
                (String::from("call"), String::from("publish")),
                (
                    String::from("tcurl"),
                    String::from("rtmp://h:1935/live?a=b c&é")
                ),
            ],
        };
        assert_eq!(
            call.form(),
            "call=publish&tcurl=rtmp%3A%2F%2Fh%3A1935%2Flive%3Fa%3Db+c%26%C3%A9"
        );
        assert_eq!(percent_decode("rtmp%3A%2F%2Fh+x%26%C3%A9"), "rtmp://h x&é");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
