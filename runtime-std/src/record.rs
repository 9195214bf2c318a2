//! Recording live streams to FLV files, with nginx-rtmp's `record`
//! semantics per app (docs/recording.md).
//!
//! A recorder is a server-side player: when a stream of an app with
//! `record` on starts publishing ([`HubEvent::Published`](tern_core::hub::HubEvent)),
//! a task joins the stream's scope with protocol `Internal` and plays it
//! with the FLV codec's raw framing, so it gets the same fast start and the
//! same tag bytes as FLV players. It hands each tag to a writer thread
//! through a bounded queue; a full queue (a disk that does not keep up)
//! ends the recording with a log line, so a slow disk never slows a live
//! player, and the hub's outbox still bounds what the recorder holds. The
//! writer flushes on each video keyframe and at least once a second, so a
//! `kill -9` leaves a file that plays up to about its last second.
//!
//! A file's first `onMetaData` is written with `duration` and `filesize`
//! slots ([`tern_core::flv::metadata`]) that a clean close fills in, so
//! players see the file's length and can seek; then the file is reported
//! ([`FileDone`]): a log line, a counter, and the app's `on_record_done`
//! callback ([`done_call`]).

use crate::config::{AppConfig, RecordMode};
use bytes::Bytes;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tern_core::access::{CallId, HookCall, HookKind};
use tern_core::flv::fanout::rebase;
use tern_core::flv::metadata::{self, SeekFields};
use tern_core::flv::tag::{self, FlvTagView};
use tern_core::hub::{MediaDelivery, MediaKind, MediaPriority};
use tern_core::scope_path::{ScopePath, validate_segment};
use tracing::{error, info, warn};

/// The name recorders' hub connections are counted and hooked under.
pub const PROTOCOL: tern_core::hub::Protocol = tern_core::hub::Protocol::new("internal");

/// Messages the writer may have waiting (about 8 s of a 25 fps stream with
/// audio); more means the disk does not keep up.
pub const QUEUE: usize = 512;

/// How often the writer flushes at least.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One app's recording settings, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSettings {
    /// What is recorded.
    pub mode: RecordMode,
    /// The directory recordings go under.
    pub dir: PathBuf,
    /// strftime-style suffix after the stream name.
    pub suffix: String,
    /// A file ends at the next keyframe past this many bytes (0: never).
    pub max_size: u64,
    /// … past this many video frames (0: never).
    pub max_frames: u64,
    /// … past this age (`None`: never).
    pub interval: Option<Duration>,
    /// `on_record_done`: called with each completed file.
    pub on_done_url: Option<String>,
}

impl RecordSettings {
    /// The settings of `app`, `None` if it records nothing.
    pub fn of(app: &AppConfig, data_dir: &Path) -> Option<RecordSettings> {
        (app.record != RecordMode::Off).then(|| RecordSettings {
            mode: app.record,
            dir: app
                .record_path
                .clone()
                .unwrap_or_else(|| data_dir.join("recordings")),
            suffix: app.record_suffix.clone(),
            max_size: app.record_max_size,
            max_frames: app.record_max_frames,
            interval: (app.record_interval_secs > 0)
                .then(|| Duration::from_secs(app.record_interval_secs)),
            on_done_url: app.on_record_done.clone(),
        })
    }

    /// True if a message of `kind` and `priority` is recorded.
    pub fn keeps(&self, kind: MediaKind, priority: MediaPriority) -> bool {
        match (self.mode, kind) {
            (RecordMode::Off, _) => false,
            (_, MediaKind::Data) | (RecordMode::All, _) => true,
            (RecordMode::Video, kind) => kind == MediaKind::Video,
            (RecordMode::Audio, kind) => kind == MediaKind::Audio,
            (RecordMode::Keyframes, kind) => {
                kind == MediaKind::Video
                    && matches!(priority, MediaPriority::Key | MediaPriority::SequenceHeader)
            }
        }
    }
}

/// Where the files of one stream's recording go: `<dir>/<app>/<room…>/<name>`,
/// to which each file adds its suffix. Every part is a validated scope
/// segment (no traversal); `None` if the stream name is not one.
pub fn stream_base(dir: &Path, scope: &ScopePath, name: &str) -> Option<PathBuf> {
    validate_segment(name).ok()?;
    let mut path = dir.to_path_buf();
    for segment in scope.segments() {
        validate_segment(segment).ok()?;
        path.push(segment);
    }
    path.push(name);
    Some(path)
}

/// `format` with strftime's `%Y %m %d %H %M %S %s %%` filled in for
/// `at` (UTC); other `%x` are kept as written, and `/` is replaced (a
/// suffix never adds a directory).
pub fn strftime(format: &str, at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(if c == '/' || c == '\\' { '_' } else { c });
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&format!("{year:04}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('s') => out.push_str(&secs.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What the recorder hands the writer.
#[derive(Debug)]
pub struct Tag {
    /// One raw FLV tag (the FLV codec's [`Framing::Raw`](tern_core::flv::Framing) encoding).
    pub encoded: Bytes,
    /// Kind and priority, for keyframes and headers.
    pub kind: MediaKind,
    /// Drop priority.
    pub priority: MediaPriority,
}

impl Tag {
    /// The tag of a delivery.
    pub fn of(media: &MediaDelivery) -> Tag {
        Tag {
            encoded: media.encoded.clone(),
            kind: media.kind,
            priority: media.priority,
        }
    }
}

/// A completed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDone {
    /// Where it is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The timestamp of its last tag (ms from its first).
    pub duration_ms: u32,
}

/// How a recording ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Files completed (each is logged as it closes).
    pub files: Vec<PathBuf>,
    /// Why it stopped early, if it did.
    pub failure: Option<String>,
}

/// Starts the writer thread for a stream whose files are named from
/// `base`; returns the queue to it and the thread.
pub fn start_writer(
    settings: RecordSettings,
    base: PathBuf,
    label: String,
    on_file_done: impl Fn(&FileDone) + Send + 'static,
) -> std::io::Result<(SyncSender<Tag>, std::thread::JoinHandle<Finished>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("tern-record".to_owned())
        .spawn(move || write_recording(&rx, &settings, &base, &label, &on_file_done))?;
    Ok((tx, thread))
}

/// Hands `tag` to the writer; `Err` with the reason if the recording must
/// stop (the queue is full, or the writer stopped).
pub fn send(tx: &SyncSender<Tag>, tag: Tag) -> Result<(), &'static str> {
    match tx.try_send(tag) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => Err("the disk does not keep up (writer queue full)"),
        Err(TrySendError::Disconnected(_)) => Err("the writer stopped"),
    }
}

/// One open file.
struct Open {
    path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    video_frames: u64,
    opened: Instant,
    /// The timestamp (recorder's clock) the file's 0 stands for.
    base: u32,
    last_flush: Instant,
    /// Largest timestamp written (the file's clock).
    last_timestamp: u32,
    /// Where the first `onMetaData`'s body starts in the file, and its
    /// slots to fill on close.
    seek_fields: Option<(u64, SeekFields)>,
}

/// What every file starts with: metadata and the sequence headers last
/// seen, so each file of a split recording plays alone.
#[derive(Default)]
struct Heads {
    metadata: Option<Bytes>,
    audio: Option<Bytes>,
    video: Option<Bytes>,
}

fn write_recording(
    rx: &Receiver<Tag>,
    settings: &RecordSettings,
    base: &Path,
    label: &str,
    on_file_done: &dyn Fn(&FileDone),
) -> Finished {
    let mut files = Vec::new();
    let mut open: Option<Open> = None;
    let mut heads = Heads::default();
    let failure = loop {
        let tag = match rx.recv_timeout(FLUSH_EVERY) {
            Ok(tag) => tag,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(file) = &mut open
                    && let Err(e) = flush(file)
                {
                    break Some(format!("{}: {e}", file.path.display()));
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break None,
        };
        match write_tag(
            settings,
            base,
            &mut open,
            &mut heads,
            &tag,
            &mut files,
            on_file_done,
        ) {
            Ok(()) => {}
            Err(e) => break Some(e),
        }
    };
    if let Some(file) = open.take() {
        let path = file.path.clone();
        match close(file) {
            Ok(done) => {
                on_file_done(&done);
                files.push(path);
            }
            Err(e) => {
                let why = format!("{}: {e}", path.display());
                error!(recorder = label, "recording failed: {why}");
                return Finished {
                    files,
                    failure: Some(why),
                };
            }
        }
    }
    if let Some(why) = &failure {
        error!(recorder = label, "recording stopped: {why}");
    }
    Finished { files, failure }
}

#[allow(clippy::too_many_arguments)]
fn write_tag(
    settings: &RecordSettings,
    base: &Path,
    open: &mut Option<Open>,
    heads: &mut Heads,
    tag: &Tag,
    files: &mut Vec<PathBuf>,
    on_file_done: &dyn Fn(&FileDone),
) -> Result<(), String> {
    let (view, _) = FlvTagView::parse(&tag.encoded).map_err(|e| format!("bad tag: {e}"))?;
    // AVC's end-of-sequence tag is classed a keyframe (frame type 1) but
    // holds no picture: a file must not start with it.
    let end_of_sequence = matches!(view.body, [first, 2, ..] if first & 0x0F == 7);
    let keyframe =
        tag.kind == MediaKind::Video && tag.priority == MediaPriority::Key && !end_of_sequence;
    match (tag.kind, tag.priority) {
        (MediaKind::Data, _) => heads.metadata = Some(tag.encoded.clone()),
        (MediaKind::Audio, MediaPriority::SequenceHeader) => {
            heads.audio = Some(tag.encoded.clone())
        }
        (MediaKind::Video, MediaPriority::SequenceHeader) => {
            heads.video = Some(tag.encoded.clone())
        }
        _ => {}
    }
    if keyframe
        && let Some(file) = open.as_ref()
        && full(settings, file)
    {
        let Some(file) = open.take() else {
            return Ok(());
        };
        let path = file.path.clone();
        let done = close(file).map_err(|e| format!("{}: {e}", path.display()))?;
        on_file_done(&done);
        files.push(path);
    }
    if open.is_none() {
        // A split file starts on a keyframe (the first starts with
        // whatever the fast start sends: metadata and headers first).
        if !files.is_empty() && !keyframe {
            return Ok(());
        }
        let path = new_path(base, &settings.suffix);
        let mut file = create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        file.base = view.timestamp;
        if !files.is_empty() {
            for head in [&heads.metadata, &heads.video, &heads.audio]
                .into_iter()
                .flatten()
            {
                let (head, _) = FlvTagView::parse(head).map_err(|e| format!("bad tag: {e}"))?;
                put(&mut file, head.kind, 0, head.body)?;
            }
        }
        *open = Some(file);
    }
    let Some(file) = open.as_mut() else {
        return Ok(());
    };
    let timestamp = rebase(view.timestamp, file.base);
    put(file, view.kind, timestamp, view.body)?;
    if tag.kind == MediaKind::Video && tag.priority != MediaPriority::SequenceHeader {
        file.video_frames += 1;
    }
    if keyframe || file.last_flush.elapsed() >= FLUSH_EVERY {
        flush(file).map_err(|e| format!("{}: {e}", file.path.display()))?;
    }
    Ok(())
}

fn full(settings: &RecordSettings, file: &Open) -> bool {
    (settings.max_size > 0 && file.bytes >= settings.max_size)
        || (settings.max_frames > 0 && file.video_frames >= settings.max_frames)
        || settings
            .interval
            .is_some_and(|every| file.opened.elapsed() >= every)
}

/// `base` + the suffix for now; a name taken already (two files in one
/// second) gets `-1`, `-2`… before its extension.
fn new_path(base: &Path, suffix: &str) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let full = format!("{name}{}", strftime(suffix, SystemTime::now()));
    let first = base.with_file_name(&full);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match full.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_owned(), format!(".{ext}")),
        None => (full.clone(), String::new()),
    };
    (1..)
        .map(|n| base.with_file_name(format!("{stem}-{n}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn create(path: &Path) -> std::io::Result<Open> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = File::options().write(true).create_new(true).open(path)?;
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    out.write_all(&tag::FILE_HEADER)?;
    let now = Instant::now();
    Ok(Open {
        path: path.to_path_buf(),
        out,
        bytes: tag::FILE_HEADER.len() as u64,
        video_frames: 0,
        opened: now,
        base: 0,
        last_flush: now,
        last_timestamp: 0,
        seek_fields: None,
    })
}

fn put(file: &mut Open, kind: MediaKind, timestamp: u32, body: &[u8]) -> Result<(), String> {
    // The file's first metadata gets the slots its close fills in.
    if kind == MediaKind::Data
        && file.seek_fields.is_none()
        && let Some((body, fields)) =
            metadata::with_seek_fields(body, &tern_core::Limits::default())
    {
        let at = file.bytes + tag::TAG_HEADER_LEN as u64;
        put_tag(file, kind, timestamp, &body)?;
        file.seek_fields = Some((at, fields));
        return Ok(());
    }
    if kind != MediaKind::Data {
        file.last_timestamp = file.last_timestamp.max(timestamp);
    }
    put_tag(file, kind, timestamp, body)
}

fn put_tag(file: &mut Open, kind: MediaKind, timestamp: u32, body: &[u8]) -> Result<(), String> {
    let mut header = Vec::with_capacity(tag::TAG_HEADER_LEN);
    // The header, then the body and size from the caller's bytes: one copy
    // into the buffered writer.
    tag::write_tag(&mut header, kind, timestamp, &[]).map_err(|e| e.to_string())?;
    header.truncate(tag::TAG_HEADER_LEN);
    let size = body.len() as u32;
    header[1..4].copy_from_slice(&size.to_be_bytes()[1..]);
    let previous = (size + tag::TAG_HEADER_LEN as u32).to_be_bytes();
    let wrote = file
        .out
        .write_all(&header)
        .and_then(|()| file.out.write_all(body))
        .and_then(|()| file.out.write_all(&previous));
    wrote.map_err(|e| format!("{}: {e}", file.path.display()))?;
    file.bytes += tag::tag_len(body.len()) as u64;
    Ok(())
}

fn flush(file: &mut Open) -> std::io::Result<()> {
    file.last_flush = Instant::now();
    file.out.flush()
}

/// Flushes, fills in the metadata's `duration` and `filesize`, and syncs.
fn close(mut file: Open) -> std::io::Result<FileDone> {
    file.out.flush()?;
    if let Some((at, fields)) = file.seek_fields {
        let duration = f64::from(file.last_timestamp) / 1000.0;
        let out = file.out.get_ref();
        out.write_all_at(&duration.to_be_bytes(), at + fields.duration_at as u64)?;
        out.write_all_at(
            &(file.bytes as f64).to_be_bytes(),
            at + fields.filesize_at as u64,
        )?;
    }
    file.out.get_ref().sync_data()?;
    Ok(FileDone {
        path: file.path,
        bytes: file.bytes,
        duration_ms: file.last_timestamp,
    })
}

/// Logs a recording that could not start.
pub fn not_started(label: &str, why: &str) {
    warn!(recorder = label, "not recording: {why}");
}

/// Logs a finished file.
pub fn file_done(label: &str, done: &FileDone) {
    info!(
        recorder = label,
        path = %done.path.display(),
        bytes = done.bytes,
        duration_ms = done.duration_ms,
        "record done"
    );
}

/// The `on_record_done` call for `done`, a file of stream `name` in
/// `scope`, to `url`: nginx-rtmp's `call=record_done`, `recorder`, `app`,
/// `name` and `path` (made absolute), then tern's `scope`, `duration`
/// (seconds) and `filesize` (bytes). `app` is the scope path without its
/// leading `/`, as the other callbacks' `app` is for a client that
/// connected to a room.
pub fn done_call(
    scope: &ScopePath,
    name: &str,
    label: &str,
    done: &FileDone,
    url: &str,
) -> HookCall {
    let path = std::path::absolute(&done.path).unwrap_or_else(|_| done.path.clone());
    let fields = [
        ("call", "record_done".to_owned()),
        ("recorder", label.to_owned()),
        ("app", scope.as_str().trim_start_matches('/').to_owned()),
        ("name", name.to_owned()),
        ("path", path.display().to_string()),
        ("scope", scope.as_str().to_owned()),
        (
            "duration",
            format!("{:.3}", f64::from(done.duration_ms) / 1000.0),
        ),
        ("filesize", done.bytes.to_string()),
    ];
    HookCall {
        id: CallId(0),
        app: scope.app_name().to_owned(),
        kind: HookKind::RecordDone,
        url: url.to_owned(),
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_fills_in_utc_fields() {
        // 2026-12-06 11:45:39 UTC.
        let at = UNIX_EPOCH + Duration::from_secs(1_796_557_539);
        assert_eq!(strftime("-%Y%m%d-%H%M%S.flv", at), "-20261206-114539.flv");
        assert_eq!(strftime("%s%%%q/x", at), "1796557539%%q_x");
        assert_eq!(strftime("-%Y-%m-%d", UNIX_EPOCH), "-1970-01-01");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(strftime("%Y%m%d", leap), "20000229");
    }

    #[test]
    fn file_names_come_from_validated_segments_only() {
        let scope = ScopePath::resolve("live/room", 8).unwrap();
        assert_eq!(
            stream_base(Path::new("/r"), &scope, "cam"),
            Some(PathBuf::from("/r/live/room/cam"))
        );
        for bad in ["..", "a/b", "", "c am", "x\\y"] {
            assert_eq!(stream_base(Path::new("/r"), &scope, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn modes_keep_what_nginx_rtmp_keeps() {
        let mut s = RecordSettings {
            mode: RecordMode::Keyframes,
            dir: PathBuf::new(),
            suffix: String::new(),
            max_size: 0,
            max_frames: 0,
            interval: None,
            on_done_url: None,
        };
        assert!(s.keeps(MediaKind::Video, MediaPriority::Key));
        assert!(s.keeps(MediaKind::Video, MediaPriority::SequenceHeader));
        assert!(!s.keeps(MediaKind::Video, MediaPriority::Inter));
        assert!(!s.keeps(MediaKind::Audio, MediaPriority::Audio));
        s.mode = RecordMode::Audio;
        assert!(s.keeps(MediaKind::Audio, MediaPriority::SequenceHeader));
        assert!(!s.keeps(MediaKind::Video, MediaPriority::Key));
        assert!(s.keeps(MediaKind::Data, MediaPriority::Data));
        s.mode = RecordMode::Video;
        assert!(!s.keeps(MediaKind::Audio, MediaPriority::Audio));
        assert!(s.keeps(MediaKind::Video, MediaPriority::Inter));
    }
}
