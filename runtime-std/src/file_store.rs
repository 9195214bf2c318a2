//! Persistent shared objects as files: `<data_dir>/<app>/<room>/…/<name>.so`.
//!
//! Paths are built only from [`ScopePath::segments`] and names that pass
//! [`validate_segment`], so no stored name can climb out of the data
//! directory or name a special file.
//!
//! A save is atomic and durable before it returns: write `<name>.so.tmp`,
//! `fsync` it, rename it over `<name>.so`, then `fsync` the directory (and
//! every directory the save had to create, from its parent). After a crash a
//! reader sees either the old or the new object, never a mix; a leftover
//! `.tmp` is ignored and overwritten by the next save.
//!
//! The calls block on the disk; the hub calls them before acknowledging a
//! change, which is the point.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tern_core::Limits;
use tern_core::hub::store::{Store, StoreError, StoredObject};
use tern_core::scope_path::{ScopePath, validate_segment};
use tracing::{debug, warn};

/// Extension of a stored shared object.
pub const EXTENSION: &str = "so";

/// Suffix of a save in progress.
const TMP_SUFFIX: &str = ".tmp";

/// What a stored object's file holds besides its attributes: the magic
/// string, the version and the ECMA array's marker, count and end (30
/// bytes), with room to spare.
const FILE_FRAMING: u64 = 64;

/// A [`Store`] of one file per shared object under a data directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    limits: Limits,
    /// Longest file [`Store::load`] reads.
    max_file_bytes: u64,
}

impl FileStore {
    /// A store rooted at `root`. Nothing is touched until the first save
    /// (a missing directory is an empty store).
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        let object = tern_core::hub::shared_object::SoLimits::default().max_object_bytes;
        FileStore {
            root: root.into(),
            limits: Limits::default(),
            max_file_bytes: FILE_FRAMING.saturating_add(object as u64),
        }
    }

    /// Bounds for decoding stored objects (default: [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> FileStore {
        self.limits = limits;
        self
    }

    /// The largest object the hub stores (`shared_objects.max_object_bytes`;
    /// default: the core's `SoLimits` default). A file longer than that
    /// object's encoding is not read into memory: loading it fails, with a
    /// log line, as a corrupt object does. (An object saved under a larger
    /// bound than the server now runs with is refused until the bound is
    /// raised again.)
    pub fn with_max_object_bytes(mut self, max_object_bytes: usize) -> FileStore {
        self.max_file_bytes = FILE_FRAMING.saturating_add(max_object_bytes as u64);
        self
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `scope`.
    fn scope_dir(&self, scope: &ScopePath) -> PathBuf {
        let mut dir = self.root.clone();
        dir.extend(scope.segments());
        dir
    }

    /// The file of object `name` in `scope`; refuses invalid names.
    pub fn object_path(&self, scope: &ScopePath, name: &str) -> Result<PathBuf, StoreError> {
        validate_segment(name)
            .map_err(|e| StoreError::Io(format!("refusing shared-object name {name:?}: {e}")))?;
        Ok(self.scope_dir(scope).join(format!("{name}.{EXTENSION}")))
    }

    /// Creates `dir` and any missing parents up to the root, fsyncing each
    /// new directory's parent so the new entries survive a crash.
    fn ensure_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if dir.as_os_str().is_empty() || dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent()
            && parent != dir
        {
            self.ensure_dir(parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {}
            // Raced with another creator, or the root given as "" (cwd).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
            Err(e) => return Err(io_error("create directory", dir, &e)),
        }
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn walk(
        &self,
        dir: &Path,
        scope: Option<&ScopePath>,
        depth: usize,
        out: &mut Vec<(ScopePath, String)>,
    ) -> Result<(), StoreError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && scope.is_none() => return Ok(()),
            Err(e) => return Err(io_error("list", dir, &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", dir, &e))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| io_error("inspect", &path, &e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                warn!(path = %path.display(), "skipping stored entry with a non-UTF-8 name");
                continue;
            };
            if file_type.is_dir() {
                if depth > crate::config::MAX_SCOPE_DEPTH {
                    warn!(path = %path.display(), "skipping stored scope nested too deep");
                    continue;
                }
                let child = match scope {
                    None => ScopePath::app(&file_name),
                    Some(scope) => scope.child(&file_name),
                };
                match child {
                    Ok(child) => self.walk(&path, Some(&child), depth + 1, out)?,
                    Err(e) => warn!(path = %path.display(), "skipping stored scope: {e}"),
                }
            } else if file_name.ends_with(TMP_SUFFIX) {
                debug!(path = %path.display(), "ignoring unfinished save");
            } else if let Some(name) = file_name.strip_suffix(&format!(".{EXTENSION}")) {
                match (scope, validate_segment(name)) {
                    (Some(scope), Ok(())) => out.push((scope.clone(), name.to_owned())),
                    (None, _) => {
                        warn!(path = %path.display(), "skipping shared object outside any app");
                    }
                    (_, Err(e)) => warn!(path = %path.display(), "skipping shared object: {e}"),
                }
            } else {
                debug!(path = %path.display(), "ignoring unknown file in the data directory");
            }
        }
        Ok(())
    }
}

impl Store for FileStore {
    fn load(&mut self, scope: &ScopePath, name: &str) -> Result<Option<StoredObject>, StoreError> {
        let path = self.object_path(scope, name)?;
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, &e)),
        };
        let mut bytes = Vec::new();
        file.take(self.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("read", &path, &e))?;
        if bytes.len() as u64 > self.max_file_bytes {
            warn!(
                path = %path.display(),
                max = self.max_file_bytes,
                "cannot load shared object: the file is longer than the largest object \
                 shared_objects.max_object_bytes allows"
            );
            return Err(StoreError::Corrupt);
        }
        StoredObject::from_bytes(&bytes, &self.limits)
            .map(Some)
            .inspect_err(|e| warn!(path = %path.display(), "cannot load shared object: {e}"))
    }

    fn save(
        &mut self,
        scope: &ScopePath,
        name: &str,
        object: &StoredObject,
    ) -> Result<(), StoreError> {
        let path = self.object_path(scope, name)?;
        let dir = self.scope_dir(scope);
        self.ensure_dir(&dir)?;
        let tmp = dir.join(format!("{name}.{EXTENSION}{TMP_SUFFIX}"));
        let write = || -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&object.to_bytes())?;
            file.sync_all()
        };
        write().map_err(|e| io_error("write", &tmp, &e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_error("replace", &path, &e)
        })?;
        sync_dir(&dir)
    }

    fn list(&mut self) -> Result<Vec<(ScopePath, String)>, StoreError> {
        let mut out = Vec::new();
        let root = self.root.clone();
        self.walk(&root, None, 0, &mut out)?;
        out.sort();
        Ok(out)
    }
}

/// Makes a directory's entries (renames, new files) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // An empty parent is the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync directory", dir, &e))
}

fn io_error(action: &str, path: &Path, error: &io::Error) -> StoreError {
    StoreError::Io(format!("{action} {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tern_core::amf0::Value;

    fn scope(s: &str) -> ScopePath {
        ScopePath::resolve(s, 8).unwrap()
    }

    fn object(version: u32) -> StoredObject {
        let mut data = BTreeMap::new();
        data.insert("topic".to_owned(), Value::String("hello".to_owned()));
        data.insert("count".to_owned(), Value::Number(3.0));
        StoredObject { version, data }
    }

    #[test]
    fn layout_follows_the_scope_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::new(dir.path());
        store
            .save(&scope("chat/lobby/a"), "room", &object(1))
            .unwrap();
        assert!(dir.path().join("chat/lobby/a/room.so").is_file());
        assert!(!dir.path().join("chat/lobby/a/room.so.tmp").exists());
        store.save(&scope("chat"), "global", &object(1)).unwrap();
        assert!(dir.path().join("chat/global.so").is_file());
    }

    #[test]
    fn missing_object_and_missing_root_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::new(dir.path().join("not-yet"));
        assert_eq!(store.load(&scope("chat/r"), "x").unwrap(), None);
        assert_eq!(store.list().unwrap(), vec![]);
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::new(dir.path());
        store.save(&scope("chat/r"), "so", &object(7)).unwrap();
        assert_eq!(store.load(&scope("chat/r"), "so").unwrap(), Some(object(7)));
        // a new store over the same directory (a restart) sees it too
        let mut again = FileStore::new(dir.path());
        assert_eq!(again.load(&scope("chat/r"), "so").unwrap(), Some(object(7)));
        // saving replaces
        store.save(&scope("chat/r"), "so", &object(8)).unwrap();
        assert_eq!(
            store.load(&scope("chat/r"), "so").unwrap().unwrap().version,
            8
        );
    }

    /// AMF3-only values (a ByteArray and a Vector.<int> as the AVM+ values
    /// of the shared model, one nested in an object) survive a restart
    /// byte for byte.
    #[test]
    fn amf3_values_round_trip_through_the_files() {
        use tern_core::amf3;
        let avmplus = |v: &amf3::Value| {
            let mut out = Vec::new();
            amf3::encode(v, &mut out);
            Value::Avmplus(out.into())
        };
        let mut data = BTreeMap::new();
        data.insert(
            "bytes".to_owned(),
            avmplus(&amf3::Value::ByteArray(vec![0, 1, 255])),
        );
        data.insert(
            "nested".to_owned(),
            Value::object([(
                "v",
                avmplus(&amf3::Value::VectorInt(amf3::Vector {
                    fixed: false,
                    items: vec![-3, 4],
                })),
            )]),
        );
        let saved = StoredObject { version: 3, data };
        let dir = tempfile::tempdir().unwrap();
        FileStore::new(dir.path())
            .save(&scope("chat/r"), "amf3", &saved)
            .unwrap();
        let mut again = FileStore::new(dir.path());
        assert_eq!(again.load(&scope("chat/r"), "amf3").unwrap(), Some(saved));
    }

    #[test]
    fn corrupt_file_is_reported_not_panicked() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("chat")).unwrap();
        fs::write(dir.path().join("chat/bad.so"), b"\xff\x00garbage").unwrap();
        let mut store = FileStore::new(dir.path());
        assert_eq!(store.load(&scope("chat"), "bad"), Err(StoreError::Corrupt));
    }

    /// An object the hub could have stored under `max_object_bytes`
    /// loads; a longer file is not read, although it would decode.
    #[test]
    fn files_longer_than_the_largest_object_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let string_of = |len: usize| {
            let mut data = BTreeMap::new();
            data.insert("k".to_owned(), Value::String("x".repeat(len)));
            StoredObject { version: 1, data }
        };
        // One attribute of 2 + 1 + 3 + 94 = 100 bytes (the hub's measure),
        // 130 bytes with the file's framing.
        let fits = string_of(94);
        let over = string_of(94 + 35);
        let mut store = FileStore::new(dir.path()).with_max_object_bytes(100);
        store.save(&scope("chat"), "fits", &fits).unwrap();
        store.save(&scope("chat"), "over", &over).unwrap();
        assert_eq!(store.load(&scope("chat"), "fits"), Ok(Some(fits)));
        assert_eq!(store.load(&scope("chat"), "over"), Err(StoreError::Corrupt));
        let mut unbounded = FileStore::new(dir.path());
        assert_eq!(unbounded.load(&scope("chat"), "over"), Ok(Some(over)));
    }

    #[test]
    fn list_walks_the_tree_and_skips_leftovers_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::new(dir.path());
        store.save(&scope("chat/r1"), "b", &object(1)).unwrap();
        store.save(&scope("chat/r1"), "a", &object(1)).unwrap();
        store.save(&scope("live"), "meta", &object(1)).unwrap();
        let root = dir.path();
        fs::write(root.join("chat/r1/c.so.tmp"), b"half").unwrap();
        fs::write(root.join("chat/r1/bad name.so"), b"").unwrap();
        fs::write(root.join("chat/r1/notes.txt"), b"").unwrap();
        fs::write(root.join("toplevel.so"), b"").unwrap();
        fs::create_dir_all(root.join("bad dir/x")).unwrap();
        fs::write(root.join("bad dir/x/y.so"), b"").unwrap();
        let listed = store.list().unwrap();
        let listed: Vec<(String, String)> = listed
            .into_iter()
            .map(|(s, n)| (s.to_string(), n))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("/chat/r1".to_owned(), "a".to_owned()),
                ("/chat/r1".to_owned(), "b".to_owned()),
                ("/live".to_owned(), "meta".to_owned()),
            ]
        );
    }

    #[test]
    fn invalid_names_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::new(dir.path());
        for name in ["..", "../x", "a/b", "", "x y", "é"] {
            assert!(
                matches!(
                    store.save(&scope("chat"), name, &object(1)),
                    Err(StoreError::Io(_))
                ),
                "{name:?}"
            );
            assert!(store.load(&scope("chat"), name).is_err(), "{name:?}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn leftover_tmp_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("chat")).unwrap();
        fs::write(dir.path().join("chat/s.so.tmp"), b"stale stale stale").unwrap();
        let mut store = FileStore::new(dir.path());
        store.save(&scope("chat"), "s", &object(1)).unwrap();
        assert!(!dir.path().join("chat/s.so.tmp").exists());
        assert_eq!(
            fs::read(dir.path().join("chat/s.so")).unwrap(),
            object(1).to_bytes()
        );
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let mut store = FileStore::new(&file);
        let Err(StoreError::Io(message)) = store.save(&scope("chat"), "s", &object(1)) else {
            panic!("expected an I/O error");
        };
        assert!(message.contains("a-file"), "{message}");
    }
}
