//! The owned AMF3 value: what a decoded AMF3 buffer means.

use alloc::string::String;
use alloc::vec::Vec;

/// Ordered name/value pairs: an array's associative part, an object's
/// sealed or dynamic members. Order is kept so a decoded value re-encodes
/// to the same bytes.
pub type Properties = Vec<(String, Value)>;

/// One AMF3 value. Every marker 0x00–0x11 has a variant; strings and traits
/// references are resolved when decoding (and re-created when encoding),
/// object references are kept as [`Value::Reference`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// 0x00.
    Undefined,
    /// 0x01.
    Null,
    /// 0x02 (false) and 0x03 (true).
    Boolean(bool),
    /// 0x04: a 29-bit signed integer, −2^28 ..= 2^28 − 1. A value outside
    /// that range is encoded as a double (what Flash does).
    Integer(i32),
    /// 0x05: an IEEE-754 double (bits kept, NaN included).
    Double(f64),
    /// 0x06: UTF-8 text.
    String(String),
    /// 0x07: legacy `flash.xml.XMLDocument` text.
    XmlDocument(String),
    /// 0x08: milliseconds since the Unix epoch, UTC.
    Date(f64),
    /// 0x09: an ActionScript `Array`.
    Array(Array),
    /// 0x0A: an object (anonymous or of a registered class).
    Object(Object),
    /// 0x0B: E4X `XML` text.
    Xml(String),
    /// 0x0C: `flash.utils.ByteArray`.
    ByteArray(Vec<u8>),
    /// 0x0D: `Vector.<int>`.
    VectorInt(Vector<i32>),
    /// 0x0E: `Vector.<uint>`.
    VectorUint(Vector<u32>),
    /// 0x0F: `Vector.<Number>`.
    VectorDouble(Vector<f64>),
    /// 0x10: `Vector.<T>` of objects; `type_name` is `T`'s class alias
    /// (empty or `"*"` for untyped).
    VectorObject {
        /// Whether the vector has a fixed length.
        fixed: bool,
        /// The element type's alias.
        type_name: String,
        /// The elements.
        items: Vec<Value>,
    },
    /// 0x11: `flash.utils.Dictionary`; keys are any value.
    Dictionary {
        /// Whether the dictionary holds its keys weakly.
        weak_keys: bool,
        /// Key/value pairs in wire order.
        entries: Vec<(Value, Value)>,
    },
    /// 0x0A with externalizable traits, for the classes whose body is
    /// one AMF3 value ([`EXTERNALIZABLE_ONE_VALUE`]): Flex's
    /// `ArrayCollection`, `ArrayList` and `ObjectProxy`, which write their
    /// source array or proxied object. Other externalizable classes are
    /// refused ([`DecodeError::Externalizable`](super::DecodeError)).
    Externalizable {
        /// The class alias, one of [`EXTERNALIZABLE_ONE_VALUE`].
        class_name: String,
        /// What the class writes: one value.
        body: alloc::boxed::Box<Value>,
    },
    /// A reference to the complex value (array, object, date, XML, XML
    /// document, byte array, vector or dictionary) with this index in the
    /// same buffer's object table, numbered from 0 in the order they start.
    /// See [`resolve`](super::resolve) to replace references by copies.
    Reference {
        /// The marker it was written with: the referred value's type, one
        /// of 0x07–0x11 kept for an exact round trip (readers
        /// look only at the index). A marker outside 0x07–0x11 is written
        /// as 0x0A.
        marker: u8,
        /// Index into the object table.
        index: u32,
    },
}

/// An `Array`: an associative part (name/value pairs) and a dense part.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Array {
    /// Named members, in wire order.
    pub assoc: Properties,
    /// Elements 0, 1, ….
    pub dense: Vec<Value>,
}

/// An object and its traits.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Object {
    /// The registered class alias; empty for an anonymous `Object`.
    pub class_name: String,
    /// Sealed members (declared by the class), in traits order.
    pub sealed: Properties,
    /// Dynamic members, or `None` when the class is not dynamic.
    /// An anonymous `Object` is dynamic with no sealed members.
    pub dynamic: Option<Properties>,
}

impl Object {
    /// An anonymous, dynamic object (`{k: v, …}` in ActionScript).
    pub fn anonymous<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        Object {
            class_name: String::new(),
            sealed: Vec::new(),
            dynamic: Some(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        }
    }

    /// Whether this is what ActionScript writes for `{…}`: no class, no
    /// sealed members, dynamic.
    pub fn is_anonymous(&self) -> bool {
        self.class_name.is_empty() && self.sealed.is_empty() && self.dynamic.is_some()
    }

    /// Sealed then dynamic members.
    pub fn members(&self) -> impl Iterator<Item = &(String, Value)> {
        self.sealed.iter().chain(self.dynamic.iter().flatten())
    }
}

/// A `Vector.<int>`, `Vector.<uint>` or `Vector.<Number>`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Vector<T> {
    /// Whether the vector has a fixed length.
    pub fixed: bool,
    /// The elements.
    pub items: Vec<T>,
}

/// The externalizable classes whose `writeExternal` writes exactly one AMF3
/// value (`output.writeObject(...)`), so tern can read and delimit them
/// without the class: Flex's `mx.collections.ArrayCollection`,
/// `mx.collections.ArrayList` and `mx.utils.ObjectProxy`, under their
/// registered aliases.
pub const EXTERNALIZABLE_ONE_VALUE: [&str; 3] = [
    "flex.messaging.io.ArrayCollection",
    "flex.messaging.io.ArrayList",
    "flex.messaging.io.ObjectProxy",
];

/// Smallest integer [`Value::Integer`] encodes as an integer (−2^28).
pub const INTEGER_MIN: i32 = -(1 << 28);
/// Largest integer [`Value::Integer`] encodes as an integer (2^28 − 1).
pub const INTEGER_MAX: i32 = (1 << 28) - 1;

impl Value {
    /// Shorthand for `Value::String(s.into())`.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Whether the value takes an entry in the object table (and so may be
    /// referred to by a [`Value::Reference`]).
    pub fn is_complex(&self) -> bool {
        matches!(
            self,
            Value::XmlDocument(_)
                | Value::Date(_)
                | Value::Array(_)
                | Value::Object(_)
                | Value::Externalizable { .. }
                | Value::Xml(_)
                | Value::ByteArray(_)
                | Value::VectorInt(_)
                | Value::VectorUint(_)
                | Value::VectorDouble(_)
                | Value::VectorObject { .. }
                | Value::Dictionary { .. }
        )
    }

    /// Child values in wire (and object-table) order.
    pub(crate) fn children(&self) -> alloc::boxed::Box<dyn Iterator<Item = &Value> + '_> {
        use alloc::boxed::Box;
        match self {
            Value::Array(a) => Box::new(a.assoc.iter().map(|(_, v)| v).chain(a.dense.iter())),
            Value::Object(o) => Box::new(o.members().map(|(_, v)| v)),
            Value::VectorObject { items, .. } => Box::new(items.iter()),
            Value::Externalizable { body, .. } => Box::new(core::iter::once(&**body)),
            Value::Dictionary { entries, .. } => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
            _ => Box::new(core::iter::empty()),
        }
    }
}
