//! The AVM+ values of one message body: one set of reference tables
//! across them when reading, none needed by a reader when writing.
//!
//! py3amf (one AMF3 context per AMF0 context) and Red5 (one `RefStorage`
//! per type-17 body, one AMF3 `Input` per type-16/19 body) write and read
//! the AVM+ values of a message with one set of string, traits and object
//! tables, so a later value may refer to an entry an earlier one made. See
//! "AMF3 reference tables" in docs/architecture.md.

use super::{DecodeError, Value, convert, decoder, encoder, resolve};
use crate::Limits;
use crate::amf0;
use alloc::vec::Vec;
use bytes::Bytes;

/// The AVM+ values inside `v`, in wire order (a container's before its
/// children's, members in order), each with the AMF0 depth it sits at
/// (`depth` for `v` itself, as the AMF0 decoder counts it).
fn gather_at(v: &amf0::Value, depth: usize, out: &mut Vec<(Bytes, usize)>) {
    match v {
        amf0::Value::Avmplus(bytes) => out.push((bytes.clone(), depth)),
        amf0::Value::Object(p)
        | amf0::Value::EcmaArray { properties: p, .. }
        | amf0::Value::TypedObject { properties: p, .. } => {
            for (_, item) in p {
                gather_at(item, depth.saturating_add(1), out);
            }
        }
        amf0::Value::StrictArray(items) => {
            for item in items {
                gather_at(item, depth.saturating_add(1), out);
            }
        }
        _ => {}
    }
}

/// Replaces the AVM+ values inside `v`, in [`gather_at`]'s order, by the
/// next items of `with`.
fn replace(v: &mut amf0::Value, with: &mut impl Iterator<Item = amf0::Value>) {
    match v {
        amf0::Value::Avmplus(_) => {
            if let Some(new) = with.next() {
                *v = new;
            }
        }
        amf0::Value::Object(p)
        | amf0::Value::EcmaArray { properties: p, .. }
        | amf0::Value::TypedObject { properties: p, .. } => {
            for (_, item) in p.iter_mut() {
                replace(item, with);
            }
        }
        amf0::Value::StrictArray(items) => {
            for item in items.iter_mut() {
                replace(item, with);
            }
        }
        _ => {}
    }
}

/// Calls `f` on every value inside `v` (not `v` itself), recursively.
fn for_each_inner(v: &mut Value, f: &mut impl FnMut(&mut Value)) {
    let mut visit = |child: &mut Value| {
        f(child);
        for_each_inner(child, f);
    };
    match v {
        Value::Array(a) => {
            a.assoc.iter_mut().for_each(|(_, c)| visit(c));
            a.dense.iter_mut().for_each(visit);
        }
        Value::Object(o) => {
            o.sealed.iter_mut().for_each(|(_, c)| visit(c));
            if let Some(d) = &mut o.dynamic {
                d.iter_mut().for_each(|(_, c)| visit(c));
            }
        }
        Value::VectorObject { items, .. } => items.iter_mut().for_each(visit),
        Value::Externalizable { body, .. } => visit(body),
        Value::Dictionary { entries, .. } => {
            for (k, c) in entries.iter_mut() {
                visit(k);
                visit(c);
            }
        }
        _ => {}
    }
}

/// Moves every object reference in `v` by `delta`; `false` (and `v`
/// partly moved) when one would fall below 0.
fn shift_references(v: &mut Value, delta: i64) -> bool {
    let mut ok = true;
    let mut shift = |c: &mut Value| {
        if let Value::Reference { index, .. } = c {
            match u32::try_from(i64::from(*index) + delta) {
                Ok(moved) => *index = moved,
                Err(_) => ok = false,
            }
        }
    };
    shift(v);
    for_each_inner(v, &mut shift);
    ok
}

/// How many entries `v` adds to the object table.
fn complex_count(v: &Value) -> u32 {
    let own = u32::from(v.is_complex());
    v.children()
        .map(complex_count)
        .fold(own, u32::saturating_add)
}

/// See [`unwrap_body`](super::unwrap_body).
pub(crate) fn unwrap_body<'v>(
    values: impl IntoIterator<Item = &'v mut amf0::Value>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let mut values: Vec<&'v mut amf0::Value> = values.into_iter().collect();
    let mut found = Vec::new();
    for v in &values {
        gather_at(v, 0, &mut found);
    }
    if found.is_empty() {
        return Ok(());
    }
    let (buffers, depths): (Vec<Bytes>, Vec<usize>) = found.into_iter().unzip();
    // One decoder, so one set of tables and one value budget, for the body.
    let mut d = decoder::Decoder::new(&[], limits);
    let mut roots = Vec::with_capacity(buffers.len());
    let mut bases = Vec::with_capacity(buffers.len());
    for bytes in &buffers {
        d.set_input(bytes);
        bases.push(d.objects());
        roots.push(d.value(0)?);
        if !d.rest().is_empty() {
            return Err(DecodeError::Truncated);
        }
    }
    // Copies made for references are bounded by the depth each value
    // sits at, as the AMF0 decoder bounded the value itself: the model
    // then holds nothing deeper than `limits` allow in either encoding.
    let trees = resolve::resolve_roots(&roots, &depths, limits)?;
    let mut out = Vec::with_capacity(roots.len());
    for (i, tree) in trees.into_iter().enumerate() {
        let replacement = match tree {
            Some(tree) => convert::to_amf0(&tree),
            // No tree form: carried as AMF3. The first value's bytes stand
            // alone; a later one's may refer to earlier entries, so it is
            // written anew with its own tables, which works when its object
            // references stay within it.
            None if i == 0 => amf0::Value::Avmplus(buffers.first().cloned().unwrap_or_default()),
            None => {
                let root = roots.get(i).ok_or(DecodeError::Truncated)?;
                let base = bases.get(i).copied().unwrap_or_default();
                let mut own = root.clone();
                if !shift_references(&mut own, -i64::from(base)) {
                    return Err(DecodeError::CyclicReference(base));
                }
                let mut bytes = Vec::new();
                super::encode(&own, &mut bytes);
                amf0::Value::Avmplus(Bytes::from(bytes))
            }
        };
        out.push(replacement);
    }
    let mut with = out.into_iter();
    for v in &mut values {
        replace(v, &mut with);
    }
    Ok(())
}

/// See [`portable_body`](super::portable_body).
pub(crate) fn portable_body<'v>(
    values: impl IntoIterator<Item = &'v mut amf0::Value>,
    limits: &Limits,
) {
    let mut values: Vec<&'v mut amf0::Value> = values.into_iter().collect();
    let mut buffers = Vec::new();
    for v in &values {
        gather_at(v, 0, &mut buffers);
    }
    if buffers.len() < 2 {
        // One AVM+ value reads the same with fresh or shared tables.
        return;
    }
    let mut out = Vec::with_capacity(buffers.len());
    let mut base: u32 = 0;
    for (i, (bytes, _)) in buffers.iter().enumerate() {
        let mut input = bytes.as_ref();
        let Ok(mut decoded) = super::decode(&mut input, limits) else {
            // Not ours to fix (tern writes what it decoded); kept as it is.
            out.push(amf0::Value::Avmplus(bytes.clone()));
            continue;
        };
        let own_objects = complex_count(&decoded);
        if i == 0 {
            out.push(amf0::Value::Avmplus(bytes.clone()));
        } else {
            // A shared-table reader numbers this value's objects after the
            // earlier values' ones; a per-value reader from 0. Only values
            // holding object references (no tree form) can tell the two
            // apart; they are written for the shared-table reader, as
            // py3amf and Red5 read.
            shift_references(&mut decoded, i64::from(base));
            let mut written = Vec::with_capacity(bytes.len());
            encoder::Encoder::without_references(&mut written).value(&decoded);
            out.push(amf0::Value::Avmplus(Bytes::from(written)));
        }
        base = base.saturating_add(own_objects);
    }
    let mut with = out.into_iter();
    for v in &mut values {
        replace(v, &mut with);
    }
}
