//! Encode once, send many, without knowing any protocol.
//!
//! A subscriber brings an [`Encoder`]: the connection side's
//! [`FanoutCodec`] and an opaque key that says everything the codec's bytes
//! depend on (for RTMP media: the player's chunk size and message stream
//! id). Subscribers with equal encoders are sent the very same [`Bytes`].
//!
//! The hub encodes lazily: a relayed message or a shared-object update is
//! encoded once per distinct encoder among the subscribers it actually
//! reaches, the first time one of them needs it ([`EncodingCache`]). A room
//! with no WebSocket client builds no JSON; a stream with no RTMP player
//! builds no chunks. Nothing is encoded, allocated or copied per subscriber:
//! the cache is a short vector reused from message to message, and a cache
//! hit clones a `Bytes` handle.
//!
//! Adding a protocol means writing a codec next to its connection; no file
//! of the hub changes.

use super::request::SoUpdate;
use super::stream::CachedMessage;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;

/// How one kind of connection turns what the hub fans out into bytes.
///
/// Implemented by the connection side (`rtmp`, `ws`, …), called by the hub
/// once per distinct [`Encoder`] among a message's subscribers. `key` is the
/// encoder's key, as the codec made it. Codecs are stateless (`&'static`):
/// the same inputs always give the same bytes, whoever asks.
pub trait FanoutCodec: Sync + fmt::Debug {
    /// A short name for stats and logs (`"rtmp"`, `"ws-json"`); two codecs
    /// with the same name are taken for the same codec.
    fn name(&self) -> &'static str;

    /// One relayed media message for every player whose encoder has `key`.
    /// Codecs of connections that never play return empty bytes.
    fn encode_media(&self, key: u64, message: &CachedMessage) -> Bytes;

    /// The body of a media message back from `encoded` (this codec's
    /// [`encode_media`](Self::encode_media) output for `key`), so a cache
    /// that keeps only the encoding can serve another encoder. `None` if
    /// it cannot be read back.
    fn media_body(&self, key: u64, encoded: &Bytes) -> Option<Bytes>;

    /// A shared-object update (all its notices, in order) for every
    /// subscriber whose encoder has `key`. Empty bytes mean "nothing
    /// shared": the connection renders the update itself.
    fn encode_update(&self, key: u64, update: &SoUpdate) -> Bytes;

    /// The key for a player whose first message is stamped `timestamp`,
    /// for codecs whose bytes count time from where each player starts
    /// (FLV). The hub calls it once per play, when it knows where the
    /// player starts (the cached GOP's keyframe, or the first message
    /// published after the player waited); players that start at the same
    /// message then still share every encoding. The default keeps `key`.
    fn starting_at(&self, key: u64, timestamp: u32) -> u64 {
        let _ = timestamp;
        key
    }
}

/// What a subscriber brings so the hub can share encodings: a codec and an
/// opaque key. Equal encoders (same codec name, same key) get the same
/// bytes. `Copy`, two words and a key: comparing and storing one costs
/// nothing on the hot path.
#[derive(Clone, Copy)]
pub struct Encoder {
    codec: &'static dyn FanoutCodec,
    key: u64,
}

impl Encoder {
    /// The encoder of `codec` with `key` (chosen by the codec's module).
    pub const fn new(codec: &'static dyn FanoutCodec, key: u64) -> Self {
        Encoder { codec, key }
    }

    /// The codec's name.
    pub fn codec_name(&self) -> &'static str {
        self.codec.name()
    }

    /// The opaque key.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// This encoder for a player whose first message is stamped
    /// `timestamp` (see [`FanoutCodec::starting_at`]).
    pub fn starting_at(self, timestamp: u32) -> Encoder {
        Encoder {
            codec: self.codec,
            key: self.codec.starting_at(self.key, timestamp),
        }
    }

    /// `message` encoded for this encoder's subscribers.
    pub fn encode_media(&self, message: &CachedMessage) -> Bytes {
        self.codec.encode_media(self.key, message)
    }

    /// The body of a media message this encoder encoded.
    pub fn media_body(&self, encoded: &Bytes) -> Option<Bytes> {
        self.codec.media_body(self.key, encoded)
    }

    /// `update` encoded for this encoder's subscribers.
    pub fn encode_update(&self, update: &SoUpdate) -> Bytes {
        self.codec.encode_update(self.key, update)
    }
}

impl PartialEq for Encoder {
    fn eq(&self, other: &Self) -> bool {
        // The same reference (address and vtable) is the same codec; the
        // name decides otherwise (vtables may be duplicated).
        self.key == other.key
            && (core::ptr::eq(self.codec, other.codec) || self.codec.name() == other.codec.name())
    }
}

impl Eq for Encoder {}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:#x}", self.codec.name(), self.key)
    }
}

/// How many encodings the hub built, per codec: what "encode once" is
/// checked by (a fan-out to N subscribers of one encoder builds one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodingStats {
    by_codec: Vec<(&'static str, u64)>,
}

impl EncodingStats {
    /// Counts one encoding by `codec`.
    fn count(&mut self, codec: &'static str) {
        match self.by_codec.iter_mut().find(|(name, _)| *name == codec) {
            Some((_, n)) => *n += 1,
            None => self.by_codec.push((codec, 1)),
        }
    }

    /// Encodings built by the codec named `codec` (0 if none).
    pub fn of(&self, codec: &str) -> u64 {
        self.by_codec
            .iter()
            .find(|(name, _)| *name == codec)
            .map_or(0, |(_, n)| *n)
    }

    /// Every codec that encoded something, with its count, in first-use
    /// order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.by_codec.iter().copied()
    }
}

/// The encodings of one message (or update) made so far, one per encoder.
/// Reused from message to message: it never shrinks, so a fan-out
/// allocates only the encodings themselves.
#[derive(Debug, Default)]
pub(super) struct EncodingCache {
    entries: Vec<(Encoder, Bytes)>,
    /// The update the entries encode, held so it cannot be freed and its
    /// address reused by another while the entries are kept.
    update: Option<Arc<SoUpdate>>,
}

impl EncodingCache {
    /// Forgets the previous message's encodings.
    pub(super) fn start_media(&mut self) {
        self.entries.clear();
        self.update = None;
    }

    /// The encoding of the current media message for `encoder`, made now
    /// if no subscriber with an equal encoder needed it yet.
    pub(super) fn media(
        &mut self,
        encoder: Encoder,
        message: &CachedMessage,
        stats: &mut EncodingStats,
    ) -> Bytes {
        if let Some((_, bytes)) = self.entries.iter().find(|(e, _)| *e == encoder) {
            return bytes.clone();
        }
        let bytes = encode_media(encoder, message, stats);
        self.entries.push((encoder, bytes.clone()));
        bytes
    }

    /// The first encoding made for the current message, if any.
    pub(super) fn first(&self) -> Option<(Encoder, Bytes)> {
        self.entries.first().cloned()
    }

    /// The encoding of `update` for `encoder`: from the entries if they are
    /// `update`'s and hold one, else made now (and the entries switch to
    /// `update` first if they were another's).
    pub(super) fn update(
        &mut self,
        encoder: Encoder,
        update: &Arc<SoUpdate>,
        stats: &mut EncodingStats,
    ) -> Bytes {
        if !self.update.as_ref().is_some_and(|u| Arc::ptr_eq(u, update)) {
            self.entries.clear();
            self.update = Some(Arc::clone(update));
        }
        if let Some((_, bytes)) = self.entries.iter().find(|(e, _)| *e == encoder) {
            return bytes.clone();
        }
        stats.count(encoder.codec_name());
        let bytes = encoder.encode_update(update);
        self.entries.push((encoder, bytes.clone()));
        bytes
    }
}

/// `message` encoded for `encoder`, counted (for encodings made outside a
/// fan-out: a joiner's headers and GOP).
pub(super) fn encode_media(
    encoder: Encoder,
    message: &CachedMessage,
    stats: &mut EncodingStats,
) -> Bytes {
    stats.count(encoder.codec_name());
    encoder.encode_media(message)
}
