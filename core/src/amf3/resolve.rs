//! Object references → copies: the tree form of a decoded value.

use super::{Array, DecodeError, Object, Properties, Value};
use crate::Limits;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// See [`resolve`](super::resolve).
pub(crate) fn resolve(value: &Value, limits: &Limits) -> Result<Value, DecodeError> {
    resolve_at(value, 0, limits)
}

/// [`resolve`] of a value found at `depth` (inside AMF0 containers): the
/// copies count their depth from there, as the AMF0 decoder counted the
/// value's own.
pub(crate) fn resolve_at(
    value: &Value,
    depth: usize,
    limits: &Limits,
) -> Result<Value, DecodeError> {
    let mut r = Resolver::new(core::slice::from_ref(value), limits);
    r.expand(value, depth)
}

/// The values of one message body, decoded with one set of reference
/// tables ([`unwrap_body`](super::unwrap_body)), each resolved against the
/// object table of all of them: `None` for one that contains itself (or
/// refers to one that does), an error for anything else, with one copy and
/// value budget for the body. `depths[i]` is the depth `roots[i]` sits
/// at (0 when missing), which its copies count from.
pub(crate) fn resolve_roots(
    roots: &[Value],
    depths: &[usize],
    limits: &Limits,
) -> Result<Vec<Option<Value>>, DecodeError> {
    let mut r = Resolver::new(roots, limits);
    let mut out = Vec::with_capacity(roots.len());
    for (i, root) in roots.iter().enumerate() {
        match r.expand(root, depths.get(i).copied().unwrap_or(0)) {
            Ok(v) => out.push(Some(v)),
            Err(DecodeError::CyclicReference(_)) => out.push(None),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The object table of `v`: its complex values in pre-order, which is the
/// order a decoder registers them (a container before its children).
fn collect<'v>(v: &'v Value, table: &mut Vec<&'v Value>) {
    if v.is_complex() {
        table.push(v);
    }
    for child in v.children() {
        collect(child, table);
    }
}

struct Resolver<'v> {
    table: Vec<&'v Value>,
    /// Address of a complex value → its object-table index.
    index: BTreeMap<usize, usize>,
    /// Object-table indices of the values being expanded (ancestors).
    open: Vec<usize>,
    max_depth: usize,
    max_values: usize,
    values_left: usize,
    max_copy: usize,
    copy_left: usize,
    /// How many references deep the expansion is (copies are charged).
    copying: usize,
}

impl<'v> Resolver<'v> {
    /// A resolver over the object table of `roots`, in order.
    fn new(roots: &'v [Value], limits: &Limits) -> Self {
        let mut table = Vec::new();
        for root in roots {
            collect(root, &mut table);
        }
        let index = table
            .iter()
            .enumerate()
            .map(|(i, v)| (core::ptr::from_ref(*v) as usize, i))
            .collect();
        let max_copy = usize::try_from(limits.max_message).unwrap_or(usize::MAX);
        Resolver {
            table,
            index,
            open: Vec::new(),
            max_depth: limits.amf0_max_depth,
            max_values: limits.amf0_max_values,
            values_left: limits.amf0_max_values,
            max_copy,
            copy_left: max_copy,
            copying: 0,
        }
    }

    /// Accounts for one value holding `bytes` bytes of text or data.
    fn count(&mut self, bytes: usize) -> Result<(), DecodeError> {
        self.values_left = self
            .values_left
            .checked_sub(1)
            .ok_or(DecodeError::TooManyValues {
                max: self.max_values,
            })?;
        self.charge(bytes)
    }

    /// Charges `bytes` against the copy budget when inside a reference.
    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        if self.copying > 0 {
            self.copy_left = self
                .copy_left
                .checked_sub(bytes)
                .ok_or(DecodeError::TooLarge { max: self.max_copy })?;
        }
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<usize, DecodeError> {
        let inner = depth.saturating_add(1);
        if inner > self.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(inner)
    }

    fn props(&mut self, props: &'v Properties, depth: usize) -> Result<Properties, DecodeError> {
        let mut out = Properties::with_capacity(props.len());
        for (k, v) in props {
            self.charge(k.len())?;
            out.push((k.clone(), self.expand(v, depth)?));
        }
        Ok(out)
    }

    fn expand(&mut self, v: &'v Value, depth: usize) -> Result<Value, DecodeError> {
        if let Value::Reference { index, .. } = v {
            let target = usize::try_from(*index)
                .ok()
                .and_then(|i| self.table.get(i))
                .copied()
                .ok_or(DecodeError::BadObjectReference(*index))?;
            self.copying += 1;
            let out = self.expand(target, depth);
            self.copying -= 1;
            return out;
        }
        let own = self.index.get(&(core::ptr::from_ref(v) as usize)).copied();
        if let Some(i) = own {
            if self.open.contains(&i) {
                return Err(DecodeError::CyclicReference(
                    u32::try_from(i).unwrap_or(u32::MAX),
                ));
            }
            self.open.push(i);
        }
        let out = self.expand_own(v, depth);
        if own.is_some() {
            self.open.pop();
        }
        out
    }

    fn expand_own(&mut self, v: &'v Value, depth: usize) -> Result<Value, DecodeError> {
        let out = match v {
            Value::String(s) | Value::XmlDocument(s) | Value::Xml(s) => {
                self.count(s.len())?;
                v.clone()
            }
            Value::ByteArray(b) => {
                self.count(b.len())?;
                v.clone()
            }
            Value::VectorInt(vec) => {
                self.count(vec.items.len().saturating_mul(4))?;
                v.clone()
            }
            Value::VectorUint(vec) => {
                self.count(vec.items.len().saturating_mul(4))?;
                v.clone()
            }
            Value::VectorDouble(vec) => {
                self.count(vec.items.len().saturating_mul(8))?;
                v.clone()
            }
            Value::Array(a) => {
                self.count(0)?;
                let inner = self.enter(depth)?;
                let assoc = self.props(&a.assoc, inner)?;
                let mut dense = Vec::with_capacity(a.dense.len().min(self.values_left));
                for item in &a.dense {
                    dense.push(self.expand(item, inner)?);
                }
                Value::Array(Array { assoc, dense })
            }
            Value::Object(o) => {
                self.count(o.class_name.len())?;
                let inner = self.enter(depth)?;
                let sealed = self.props(&o.sealed, inner)?;
                let dynamic = match &o.dynamic {
                    Some(d) => Some(self.props(d, inner)?),
                    None => None,
                };
                Value::Object(Object {
                    class_name: o.class_name.clone(),
                    sealed,
                    dynamic,
                })
            }
            Value::Externalizable { class_name, body } => {
                self.count(class_name.len())?;
                let inner = self.enter(depth)?;
                Value::Externalizable {
                    class_name: class_name.clone(),
                    body: alloc::boxed::Box::new(self.expand(body, inner)?),
                }
            }
            Value::VectorObject {
                fixed,
                type_name,
                items,
            } => {
                self.count(type_name.len())?;
                let inner = self.enter(depth)?;
                let mut out = Vec::with_capacity(items.len().min(self.values_left));
                for item in items {
                    out.push(self.expand(item, inner)?);
                }
                Value::VectorObject {
                    fixed: *fixed,
                    type_name: String::clone(type_name),
                    items: out,
                }
            }
            Value::Dictionary { weak_keys, entries } => {
                self.count(0)?;
                let inner = self.enter(depth)?;
                let mut out = Vec::with_capacity(entries.len().min(self.values_left));
                for (k, val) in entries {
                    let k = self.expand(k, inner)?;
                    out.push((k, self.expand(val, inner)?));
                }
                Value::Dictionary {
                    weak_keys: *weak_keys,
                    entries: out,
                }
            }
            // Scalars; references were expanded by the caller.
            _ => {
                self.count(0)?;
                v.clone()
            }
        };
        Ok(out)
    }
}
