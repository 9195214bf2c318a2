//! Where persistent shared objects live between uses and restarts.
//!
//! The hub calls a [`Store`] synchronously: it saves a persistent object
//! *before* acknowledging the batch that changed it, so every change a client
//! saw acknowledged is stored. runtime-std implements it with atomically
//! replaced files, runtime-embedded keeps objects in memory unless given a
//! store, and tests use [`MemoryStore`].
//!
//! [`StoredObject::to_bytes`]/[`StoredObject::from_bytes`] give stores a
//! self-describing encoding (AMF0), so a store only moves bytes. Values are
//! in the shared model, so AMF3-only values (byte arrays, vectors, typed
//! objects, dictionaries, …) are stored as AMF0's AVM+ switch followed by
//! their AMF3 encoding, and come back byte for byte.

use crate::Limits;
use crate::amf0::{self, Value};
use crate::scope_path::ScopePath;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A persistent shared object's saved state.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StoredObject {
    /// Version after the last applied batch.
    pub version: u32,
    /// Attributes in key order.
    pub data: BTreeMap<String, Value>,
}

/// Magic string that starts every stored object's encoding.
const MAGIC: &str = "tern-so-v1";

impl StoredObject {
    /// Encodes as three AMF0 values: the magic string, the version, and an
    /// ECMA array of the attributes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        amf0::encode(&Value::string(MAGIC), &mut out);
        amf0::encode(&Value::Number(f64::from(self.version)), &mut out);
        let properties = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>();
        amf0::encode(
            &Value::EcmaArray {
                count: u32::try_from(properties.len()).unwrap_or(u32::MAX),
                properties,
            },
            &mut out,
        );
        out
    }

    /// Decodes what [`to_bytes`](Self::to_bytes) wrote.
    ///
    /// `limits` bound each attribute's value as they bound it in the
    /// message that set it (depth and value count from the value itself,
    /// not from the object holding it), so whatever the hub accepted and
    /// stored loads again, however many attributes share the object; the
    /// number of attributes is bounded by the length of `bytes` (which the
    /// hub's [`SoLimits`](super::shared_object::SoLimits) bounded when it saved them).
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<StoredObject, StoreError> {
        let mut rest = bytes;
        let corrupt = |_| StoreError::Corrupt;
        let magic = amf0::decode(&mut rest, limits).map_err(corrupt)?;
        let version = amf0::decode(&mut rest, limits).map_err(corrupt)?;
        let properties = amf0::decode_separate_properties(&mut rest, limits).map_err(corrupt)?;
        match (magic, version, properties) {
            (Value::String(magic), Value::Number(version), Some(properties))
                if magic == MAGIC && rest.is_empty() =>
            {
                let version = whole_u32(version).ok_or(StoreError::Corrupt)?;
                let mut data: BTreeMap<String, Value> = properties.into_iter().collect();
                // Objects stored before AMF3 was decoded hold AVM+ values
                // that have AMF0 twins: put them in the shared model (one
                // that does not decode stays as it was stored).
                for value in data.values_mut() {
                    let mut shared = value.clone();
                    if crate::amf3::unwrap_avmplus(&mut shared, limits).is_ok() {
                        *value = shared;
                    }
                }
                Ok(StoredObject { version, data })
            }
            _ => Err(StoreError::Corrupt),
        }
    }
}

/// `n` as a `u32` if it is a whole number in range.
pub(crate) fn whole_u32(n: f64) -> Option<u32> {
    if !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return None;
    }
    // In range, so the cast only drops a fraction, which the check rejects.
    let whole = n as u32;
    (f64::from(whole) == n).then_some(whole)
}

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The stored bytes are not a stored object.
    Corrupt,
    /// The backing storage failed (the runtime logs the details).
    Io(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Corrupt => f.write_str("stored shared object is corrupt"),
            StoreError::Io(e) => write!(f, "shared-object store failed: {e}"),
        }
    }
}

impl core::error::Error for StoreError {}

/// Persistent shared-object storage, keyed by scope and object name (both
/// validated: safe as path components).
pub trait Store {
    /// The saved state of `name` in `scope`, if any.
    fn load(&mut self, scope: &ScopePath, name: &str) -> Result<Option<StoredObject>, StoreError>;
    /// Saves `object`, durably, before returning `Ok`.
    fn save(
        &mut self,
        scope: &ScopePath,
        name: &str,
        object: &StoredObject,
    ) -> Result<(), StoreError>;
    /// Every stored object, for loading at start and for stats.
    fn list(&mut self) -> Result<Vec<(ScopePath, String)>, StoreError>;
}

/// An in-memory [`Store`], for tests and for devices without storage.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    objects: BTreeMap<(ScopePath, String), Vec<u8>>,
    limits: Limits,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn load(&mut self, scope: &ScopePath, name: &str) -> Result<Option<StoredObject>, StoreError> {
        self.objects
            .get(&(scope.clone(), String::from(name)))
            .map(|bytes| StoredObject::from_bytes(bytes, &self.limits))
            .transpose()
    }

    fn save(
        &mut self,
        scope: &ScopePath,
        name: &str,
        object: &StoredObject,
    ) -> Result<(), StoreError> {
        self.objects
            .insert((scope.clone(), String::from(name)), object.to_bytes());
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<(ScopePath, String)>, StoreError> {
        Ok(self.objects.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf3;
    use bytes::Bytes;

    /// AMF3-only values (an AVM+ value, also nested in an object) and the
    /// AMF0 twins of AMF3 values come back from the stored bytes as they
    /// were.
    #[test]
    fn amf3_values_are_stored_losslessly() {
        let amf3_value = |v: &amf3::Value| {
            let mut out = Vec::new();
            amf3::encode(v, &mut out);
            Value::Avmplus(Bytes::from(out))
        };
        let bytes = amf3_value(&amf3::Value::ByteArray(alloc::vec![0, 255, 7]));
        let vector = amf3_value(&amf3::Value::VectorInt(amf3::Vector {
            fixed: true,
            items: alloc::vec![-1, 2],
        }));
        let mut data = BTreeMap::new();
        data.insert(String::from("bytes"), bytes.clone());
        data.insert(String::from("nested"), Value::object([("v", vector)]));
        data.insert(
            String::from("date"),
            Value::Date {
                millis: 1.5e12,
                time_zone: 0,
            },
        );
        let stored = StoredObject { version: 7, data };
        let back = StoredObject::from_bytes(&stored.to_bytes(), &Limits::default());
        assert_eq!(back, Ok(stored.clone()));
        // An AVM+ string stored by an older tern loads as a string.
        let mut old = stored.clone();
        old.data
            .insert(String::from("s"), amf3_value(&amf3::Value::string("hello")));
        let mut fixed = stored;
        fixed.data.insert(String::from("s"), Value::string("hello"));
        let back = StoredObject::from_bytes(&old.to_bytes(), &Limits::default());
        assert_eq!(back, Ok(fixed));
    }

    /// What the hub accepted one message at a time loads again, although
    /// the attributes together pass one message's value budget and the
    /// object holding them adds a level of nesting.
    #[test]
    fn attributes_are_bounded_each_as_in_their_own_message() {
        let limits = Limits {
            amf0_max_depth: 2,
            amf0_max_values: 8,
            ..Limits::default()
        };
        let numbers = Value::StrictArray((0..7).map(f64::from).map(Value::Number).collect());
        let deep = Value::object([("a", Value::object([("b", Value::Null)]))]);
        let mut data = BTreeMap::new();
        for (key, value) in [("x", &numbers), ("y", &numbers), ("deep", &deep)] {
            // Each value alone is within the limits, as the message that
            // set it was.
            let mut encoded = Vec::new();
            amf0::encode(value, &mut encoded);
            assert_eq!(amf0::decode(&mut &encoded[..], &limits).as_ref(), Ok(value));
            data.insert(String::from(key), value.clone());
        }
        let stored = StoredObject { version: 3, data };
        let bytes = stored.to_bytes();
        // Read as one value, the object is past both bounds.
        assert!(amf0::decode_all(&bytes, &limits).is_err());
        assert_eq!(
            StoredObject::from_bytes(&bytes, &limits),
            Ok(stored.clone())
        );

        // Each value is still bounded: one past the budget is refused.
        let mut big = stored.clone();
        big.data.insert(
            String::from("z"),
            Value::StrictArray((0..8).map(f64::from).map(Value::Number).collect()),
        );
        assert_eq!(
            StoredObject::from_bytes(&big.to_bytes(), &limits),
            Err(StoreError::Corrupt)
        );
        // So is what follows the attributes.
        let mut trailing = bytes.clone();
        trailing.push(0x05);
        assert_eq!(
            StoredObject::from_bytes(&trailing, &limits),
            Err(StoreError::Corrupt)
        );
        assert_eq!(
            StoredObject::from_bytes(&bytes[..bytes.len() - 1], &limits),
            Err(StoreError::Corrupt)
        );
    }
}
