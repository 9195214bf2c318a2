//! A remote shared object's state and the rules that change it.
//!
//! This is the pure part of DESIGN.md §5: versions, atomic batches under
//! limits, and which notices each party gets. The hub decides who the
//! subscribers are and queues the notices.

use crate::amf0::{self, Value};
use crate::hub::{ConnId, SoChange, SoNotice, SoUpdate};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// Status codes a shared-object operation can fail with.
pub mod status {
    /// The persistence flag differs from the existing object's.
    pub const BAD_PERSISTENCE: &str = "SharedObject.BadPersistence";
    /// The object could not be created (bad name, too many objects, refused).
    pub const OBJECT_CREATION_FAILED: &str = "SharedObject.ObjectCreationFailed";
    /// Reading was refused by the application.
    pub const NO_READ_ACCESS: &str = "SharedObject.NoReadAccess";
    /// The write was refused (by the application or by a limit).
    pub const NO_WRITE_ACCESS: &str = "SharedObject.NoWriteAccess";
}

/// Bounds on one scope's shared objects. Enforced per batch, atomically:
/// a batch that would break one is refused whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoLimits {
    /// Shared objects per scope.
    pub max_per_scope: usize,
    /// Keys per object.
    pub max_keys: usize,
    /// Encoded AMF0 bytes of one value.
    pub max_value_bytes: usize,
    /// Encoded bytes of all keys and values of one object.
    pub max_object_bytes: usize,
    /// Changes in one batch.
    pub max_batch: usize,
    /// Subscribers of one object.
    pub max_subscribers: usize,
}

impl Default for SoLimits {
    fn default() -> Self {
        SoLimits {
            max_per_scope: 256,
            max_keys: 4096,
            max_value_bytes: 64 * 1024,
            max_object_bytes: 4 * 1024 * 1024,
            max_batch: 1024,
            max_subscribers: 100_000,
        }
    }
}

/// Why a batch was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// More changes in one batch than allowed.
    TooManyChanges { max: usize },
    /// A value encodes larger than allowed.
    ValueTooLarge {
        key: String,
        size: usize,
        max: usize,
    },
    /// The object would hold too many keys.
    TooManyKeys { max: usize },
    /// The object would be too large.
    ObjectTooLarge { size: usize, max: usize },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::TooManyChanges { max } => {
                write!(f, "batch has more than {max} changes")
            }
            BatchError::ValueTooLarge { key, size, max } => {
                write!(f, "value of {key:?} is {size} bytes, at most {max} allowed")
            }
            BatchError::TooManyKeys { max } => {
                write!(f, "object would hold more than {max} keys")
            }
            BatchError::ObjectTooLarge { size, max } => {
                write!(f, "object would be {size} bytes, at most {max} allowed")
            }
        }
    }
}

impl core::error::Error for BatchError {}

/// One shared object.
#[derive(Debug, Clone)]
pub struct SharedObject {
    name: String,
    persistent: bool,
    version: u32,
    data: BTreeMap<String, Value>,
    /// Encoded size of every key and value (for the object size limit).
    size: usize,
    /// In subscription order.
    subscribers: Vec<ConnId>,
}

/// What a batch produced: the notice for the writer and the one for everybody
/// else, each shared by all its receivers.
#[derive(Debug, Clone)]
pub struct BatchNotices {
    /// For the connection that wrote (successes and removes).
    pub writer: Arc<SoUpdate>,
    /// For every other subscriber (changes and removes).
    pub others: Arc<SoUpdate>,
}

fn encoded_len(value: &Value) -> usize {
    let mut buf = Vec::new();
    amf0::encode(value, &mut buf);
    buf.len()
}

fn entry_size(key: &str, value_len: usize) -> usize {
    2 + key.len() + value_len
}

impl SharedObject {
    /// A new empty object at version 0.
    pub fn new(name: String, persistent: bool) -> Self {
        SharedObject {
            name,
            persistent,
            version: 0,
            data: BTreeMap::new(),
            size: 0,
            subscribers: Vec::new(),
        }
    }

    /// An object restored from storage.
    pub fn restored(name: String, version: u32, data: BTreeMap<String, Value>) -> Self {
        let size = data
            .iter()
            .map(|(k, v)| entry_size(k, encoded_len(v)))
            .sum();
        SharedObject {
            name,
            persistent: true,
            version,
            data,
            size,
            subscribers: Vec::new(),
        }
    }

    /// Name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Persistent or transient.
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Current version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Current attributes.
    pub fn data(&self) -> &BTreeMap<String, Value> {
        &self.data
    }

    /// Current subscribers, in subscription order.
    pub fn subscribers(&self) -> &[ConnId] {
        &self.subscribers
    }

    /// True if `conn` subscribes.
    pub fn is_subscriber(&self, conn: ConnId) -> bool {
        self.subscribers.contains(&conn)
    }

    /// Adds `conn` (idempotent) and returns the full-state notice for it:
    /// use-success, clear, then one change per key.
    pub fn subscribe(&mut self, conn: ConnId) -> Arc<SoUpdate> {
        if !self.is_subscriber(conn) {
            self.subscribers.push(conn);
        }
        let mut notices = Vec::with_capacity(self.data.len() + 2);
        notices.push(SoNotice::UseSuccess);
        notices.push(SoNotice::Clear);
        notices.extend(self.data.iter().map(|(k, v)| SoNotice::Change {
            key: k.clone(),
            value: v.clone(),
        }));
        self.update(notices)
    }

    /// Removes `conn`; true if it was subscribed.
    pub fn unsubscribe(&mut self, conn: ConnId) -> bool {
        let before = self.subscribers.len();
        self.subscribers.retain(|c| *c != conn);
        before != self.subscribers.len()
    }

    /// Checks a batch against `limits` without applying it.
    pub fn check_batch(&self, changes: &[SoChange], limits: &SoLimits) -> Result<(), BatchError> {
        if changes.len() > limits.max_batch {
            return Err(BatchError::TooManyChanges {
                max: limits.max_batch,
            });
        }
        // Simulate on sizes only: key → encoded value length after the batch.
        let mut pending: BTreeMap<&str, Option<usize>> = BTreeMap::new();
        for change in changes {
            match change {
                SoChange::Set { key, value } => {
                    let len = encoded_len(value);
                    if len > limits.max_value_bytes {
                        return Err(BatchError::ValueTooLarge {
                            key: key.clone(),
                            size: len,
                            max: limits.max_value_bytes,
                        });
                    }
                    pending.insert(key, Some(len));
                }
                SoChange::Delete { key } => {
                    pending.insert(key, None);
                }
            }
        }
        let mut keys = self.data.len();
        let mut size = self.size;
        for (key, after) in &pending {
            if let Some(old) = self.data.get(*key) {
                keys -= 1;
                size -= entry_size(key, encoded_len(old));
            }
            if let Some(len) = after {
                keys += 1;
                size += entry_size(key, *len);
            }
        }
        if keys > limits.max_keys {
            return Err(BatchError::TooManyKeys {
                max: limits.max_keys,
            });
        }
        if size > limits.max_object_bytes {
            return Err(BatchError::ObjectTooLarge {
                size,
                max: limits.max_object_bytes,
            });
        }
        Ok(())
    }

    /// Applies a checked batch as one version step. Every set notifies, even
    /// an unchanged value (repeated chat lines are never lost); deleting an
    /// absent key still notifies, so a client's request always has an answer.
    pub fn apply_batch(&mut self, changes: Vec<SoChange>) -> BatchNotices {
        self.version = self.version.wrapping_add(1);
        let mut writer = Vec::with_capacity(changes.len());
        let mut others = Vec::with_capacity(changes.len());
        for change in changes {
            match change {
                SoChange::Set { key, value } => {
                    let new_len = encoded_len(&value);
                    if let Some(old) = self.data.get(&key) {
                        self.size -= entry_size(&key, encoded_len(old));
                    }
                    self.size += entry_size(&key, new_len);
                    writer.push(SoNotice::Success { key: key.clone() });
                    others.push(SoNotice::Change {
                        key: key.clone(),
                        value: value.clone(),
                    });
                    self.data.insert(key, value);
                }
                SoChange::Delete { key } => {
                    if let Some(old) = self.data.remove(&key) {
                        self.size -= entry_size(&key, encoded_len(&old));
                    }
                    writer.push(SoNotice::Remove { key: key.clone() });
                    others.push(SoNotice::Remove { key });
                }
            }
        }
        BatchNotices {
            writer: self.update(writer),
            others: self.update(others),
        }
    }

    /// Server-side clear: one version step, everybody gets `clear`.
    pub fn clear(&mut self) -> Arc<SoUpdate> {
        self.version = self.version.wrapping_add(1);
        self.data.clear();
        self.size = 0;
        self.update(alloc::vec![SoNotice::Clear])
    }

    /// A broadcast call; the version does not change.
    pub fn message(&self, method: String, args: Vec<Value>) -> Arc<SoUpdate> {
        self.update(alloc::vec![SoNotice::Message { method, args }])
    }

    /// An error status for one client; the version does not change.
    pub fn status(&self, code: &'static str) -> Arc<SoUpdate> {
        status_update(&self.name, self.persistent, self.version, code)
    }

    fn update(&self, notices: Vec<SoNotice>) -> Arc<SoUpdate> {
        Arc::new(SoUpdate::new(
            self.name.clone(),
            self.persistent,
            self.version,
            notices,
        ))
    }
}

/// An error status about an object that may not exist.
pub fn status_update(
    name: &str,
    persistent: bool,
    version: u32,
    code: &'static str,
) -> Arc<SoUpdate> {
    Arc::new(SoUpdate::new(
        String::from(name),
        persistent,
        version,
        alloc::vec![SoNotice::Status {
            code,
            level: "error",
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn set(k: &str, v: &str) -> SoChange {
        SoChange::Set {
            key: k.to_string(),
            value: Value::string(v),
        }
    }

    #[test]
    fn a_batch_is_one_version_step_and_repeats_still_notify() {
        let mut so = SharedObject::new("chat".into(), false);
        let n = so.apply_batch(alloc::vec![set("a", "1"), set("b", "2")]);
        assert_eq!(so.version(), 1);
        assert_eq!(n.writer.notices.len(), 2);
        assert_eq!(n.others.version, 1);
        let n = so.apply_batch(alloc::vec![set("a", "1")]);
        assert_eq!(so.version(), 2);
        assert_eq!(
            n.others.notices,
            alloc::vec![SoNotice::Change {
                key: "a".into(),
                value: Value::string("1")
            }]
        );
    }

    #[test]
    fn limits_refuse_the_whole_batch() {
        let mut so = SharedObject::new("s".into(), false);
        let limits = SoLimits {
            max_keys: 2,
            ..SoLimits::default()
        };
        so.apply_batch(alloc::vec![set("a", "1")]);
        let batch = alloc::vec![set("b", "1"), set("c", "1")];
        assert_eq!(
            so.check_batch(&batch, &limits),
            Err(BatchError::TooManyKeys { max: 2 })
        );
        // Deleting one first makes room: checked as a whole.
        let batch = alloc::vec![
            SoChange::Delete { key: "a".into() },
            set("b", "1"),
            set("c", "1")
        ];
        assert_eq!(so.check_batch(&batch, &limits), Ok(()));
        let small = SoLimits {
            max_value_bytes: 4,
            ..SoLimits::default()
        };
        assert!(matches!(
            so.check_batch(&[set("a", "12345")], &small),
            Err(BatchError::ValueTooLarge { .. })
        ));
    }

    #[test]
    fn size_accounting_returns_to_zero() {
        let mut so = SharedObject::new("s".into(), false);
        so.apply_batch(alloc::vec![set("a", "xyz"), set("b", "1")]);
        assert!(so.size > 0);
        so.apply_batch(alloc::vec![
            SoChange::Delete { key: "a".into() },
            SoChange::Delete { key: "b".into() }
        ]);
        assert_eq!(so.size, 0);
    }
}
