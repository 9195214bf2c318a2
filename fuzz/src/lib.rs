//! Helpers shared by the tern-core fuzz targets: small [`Limits`] chosen by
//! the fuzzer, and fuzzer-chosen ways to cut a byte stream into pieces.
//!
//! Every target reads a few leading "control" bytes with these helpers and
//! treats the rest as peer input, so a seed file is those control bytes
//! followed by real wire bytes (see `docs/fuzzing.md`).

use tern_core::Limits;

/// Small limits so that every bound in the core can be hit by short inputs.
///
/// `a` and `b` are two fuzzer bytes; each field takes a few bits of them.
/// Values include 0 and the exact edges around the default chunk size (128).
pub fn limits_from(a: u8, b: u8) -> Limits {
    const MAX_MESSAGE: [u32; 8] = [0, 1, 4, 127, 128, 129, 300, 4096];
    const MAX_CHUNK_SIZE: [u32; 4] = [1, 128, 200, 4096];
    const MAX_STREAMS: [usize; 4] = [0, 1, 3, 8];
    const REASSEMBLY: [usize; 4] = [0, 129, 1000, 8192];
    const MAX_VALUES: [usize; 8] = [0, 1, 2, 5, 16, 64, 512, 4096];
    let a = usize::from(a);
    let b = usize::from(b);
    Limits {
        max_message: MAX_MESSAGE[a & 7],
        max_chunk_size: MAX_CHUNK_SIZE[(a >> 3) & 3],
        max_chunk_streams: MAX_STREAMS[(a >> 5) & 3],
        max_reassembly_bytes: REASSEMBLY[(a >> 7) | ((b & 1) << 1)],
        amf0_max_depth: (b >> 1) & 7,
        amf0_max_values: MAX_VALUES[(b >> 4) & 7],
    }
}

/// A message refused for the value budget or the string-bytes budget only.
///
/// What tern reads into its shared model may be larger when written again:
/// AMF3 object references are resolved into copies (the model holds trees)
/// and each AVM+ value is written with its own tables, so a reader with
/// the same budgets may refuse the new form although it read the old one
/// (`fuzz/regressions/*/expanded-references-*`). Targets that re-decode
/// tern's own encodings allow exactly this refusal, and only for an
/// encoding larger than what was read.
pub fn over_budget(e: &tern_core::message::MessageError) -> bool {
    use tern_core::amf0::Amf0Error;
    use tern_core::amf3::DecodeError;
    use tern_core::message::MessageError;
    match e {
        MessageError::Amf3 { error, .. } => matches!(
            error,
            DecodeError::TooManyValues { .. } | DecodeError::TooLarge { .. }
        ),
        MessageError::Amf0 { error, .. } => matches!(error, Amf0Error::TooManyValues { .. }),
        _ => false,
    }
}

/// Limits without the value and string budgets (`u32::MAX` bytes,
/// `usize::MAX` values), the rest as `limits`.
pub fn without_budgets(limits: &Limits) -> Limits {
    Limits {
        max_message: u32::MAX,
        amf0_max_values: usize::MAX,
        ..limits.clone()
    }
}

/// Cuts `data` into pieces whose lengths follow from `selector`.
///
/// Selector 0 gives the whole input as one piece (plus nothing else); any
/// other value drives a tiny xorshift generator, with the top two bits
/// choosing the typical piece size (1..=1, 1..=4, 1..=32, 1..=512 bytes).
/// Empty pieces are produced too (every 8th piece from the generator may be
/// empty) because callers must cope with being handed nothing.
pub fn pieces(selector: u8, data: &[u8]) -> Vec<&[u8]> {
    if selector == 0 {
        return vec![data];
    }
    const MAX_PIECE: [u32; 4] = [1, 4, 32, 512];
    let max = MAX_PIECE[usize::from(selector >> 6)];
    let mut state: u32 = 0x9E37_79B9 ^ u32::from(selector);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = if state & 7 == 0 {
            0
        } else {
            (state >> 3) % max + 1
        };
        let len = (len as usize).min(rest.len());
        let (head, tail) = rest.split_at(len);
        out.push(head);
        rest = tail;
    }
    out
}

/// Deterministic filler for the handshake's "random" bytes.
pub fn filler<const N: usize>(seed: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut state: u32 = 0x2545_F491 ^ (u32::from(seed) << 8 | u32::from(seed));
    for b in out.iter_mut() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *b = (state >> 24) as u8;
    }
    out
}

pub mod hub_world;
