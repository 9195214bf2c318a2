//! Typed message decoding: any type id, any payload.
//!
//! Input: `[type_id, limits_a, limits_b, payload…]`.
//!
//! Checks, besides "never panics":
//! - on success, `Message::encode` gives a type id and payload that decode
//!   again (with `Limits::default()`, since a command without a command
//!   object gains a `Null` value on re-encoding) to a message that encodes
//!   to the same bytes;
//! - commands go through `ClientCommand::from_command` and
//!   `ServerReply::from_command` (and the reply accessors); data messages
//!   through their accessors; audio/video through the tag inspectors;
//! - the AMF3 forms an objectEncoding-3 peer is sent: a command's type-17
//!   encoding (`Command::encode_amf3`) decodes again with the same name,
//!   transaction id and argument count, and a further type-17 round trip
//!   gives the same bytes (the shared model's narrowings apply once) —
//!   unless the second form is larger than the first and is refused for
//!   the value or string budget only: reading the first form expands its
//!   AMF3 object references into copies (the shared model holds trees),
//!   so the second form writes those copies out, and each AVM+ value
//!   with its own string table, which a reader with the same budget may
//!   refuse (fuzz/regressions/message_decode/expanded-references-past-the-value-budget);
//!   a data message's type-15 form (encoding byte 0 before its type-18 body)
//!   decodes again and re-encodes to the same body.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::chunk::RawMessage;
use tern_core::message::{
    AudioTag, ClientCommand, Message, MessageError, ServerReply, VideoTag, split_stream_name,
};
use tern_core_fuzz::{limits_from, over_budget};

fn raw(type_id: u8, payload: Bytes) -> RawMessage {
    RawMessage {
        csid: 3,
        timestamp: 0,
        type_id,
        stream_id: 1,
        payload,
    }
}

fn exercise(msg: &Message) {
    match msg {
        Message::Command(cmd) => {
            let _ = split_stream_name(&cmd.name);
            let _ = ClientCommand::from_command(cmd.clone());
            let reply = ServerReply::from_command(cmd.clone());
            let _ = (
                reply.transaction_id(),
                reply.info(),
                reply.code(),
                reply.level(),
            );
        }
        Message::Data(d) => {
            let _ = (d.handler(), d.is_set_data_frame(), d.metadata());
            let stripped = d.clone().without_set_data_frame();
            let _ = stripped.to_bytes();
        }
        Message::Audio(p) => {
            let _ = AudioTag::parse(p);
        }
        Message::Video(p) => {
            let _ = VideoTag::parse(p);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[type_id, la, lb], payload)) = data.split_first_chunk::<3>() else {
        return;
    };
    let limits = limits_from(la, lb);
    let Ok(msg) = Message::decode(&raw(type_id, Bytes::copy_from_slice(payload)), &limits) else {
        return;
    };
    exercise(&msg);

    let (t1, p1) = msg.encode();
    assert_eq!(t1, msg.type_id());
    let again = Message::decode(&raw(t1, p1.clone()), &Limits::default())
        .unwrap_or_else(|e| panic!("re-decode of {msg:?} failed: {e}"));
    let (t2, p2) = again.encode();
    assert_eq!(
        (t1, &p1),
        (t2, &p2),
        "encode(decode(encode(m))) != encode(m)"
    );
    amf3_forms(type_id, &msg);
});

/// The type-17 and type-15 forms of `msg`, decoded from a message of type
/// `type_id` (see the module docs).
fn amf3_forms(type_id: u8, msg: &Message) {
    let limits = Limits::default();
    match msg {
        Message::Command(cmd) => {
            let p17 = cmd.to_bytes_amf3(&limits);
            let back = match Message::decode(&raw(17, p17.clone()), &limits) {
                Ok(Message::Command(back)) => back,
                // An AVM+ value a type-20 message carried opaquely may not
                // unwrap (e.g. its references copy past the budget).
                Err(MessageError::Amf3 { .. }) if type_id != 17 => return,
                other => panic!("type-17 form of {cmd:?} does not decode: {other:?}"),
            };
            assert_eq!(back.name, cmd.name);
            assert_eq!(
                back.transaction_id.to_bits(),
                cmd.transaction_id.to_bits()
            );
            assert_eq!(back.args.len(), cmd.args.len());
            // The shared model's narrowings (an AMF0 reference becomes
            // null, a non-null command object that becomes null is written
            // as AMF0 null) apply in the first round trip only.
            let p2 = back.to_bytes_amf3(&limits);
            let again = match Message::decode(&raw(17, p2.clone()), &limits) {
                Ok(Message::Command(again)) => again,
                Err(e) if p2.len() > p17.len() && over_budget(&e) => return,
                other => panic!("second type-17 form of {cmd:?} does not decode: {other:?}"),
            };
            assert_eq!(
                again.to_bytes_amf3(&limits),
                p2,
                "third type-17 round trip of {cmd:?} changed the bytes"
            );
        }
        Message::Data(d) => {
            // What the server relays (`ServerConnection`'s data path): a
            // type-18 body as sent; a type-15 one with its AVM+ values made
            // portable, since `decode_amf3` leaves a later value written with
            // its own tables, which a shared-table reader (type 15) reads
            // differently (fuzz/regressions/message_decode/type15-own-traits-before-the-first-read).
            let mut d = d.clone();
            if type_id == 15 {
                tern_core::amf3::portable_body(&mut d.values, &limits);
            }
            let body = d.to_bytes();
            let mut p15 = vec![0u8];
            p15.extend_from_slice(&body);
            let mut back = match Message::decode(&raw(15, Bytes::from(p15)), &limits) {
                Ok(Message::Data(back)) => back,
                // As above, for AVM+ values type-18 data carried opaquely.
                Err(MessageError::Amf3 { .. }) if type_id != 15 => return,
                other => panic!("type-15 form of {d:?} does not decode: {other:?}"),
            };
            // What the server relays of a type-15 message: its values made
            // readable with shared or fresh AMF3 tables, then encoded
            // (`ServerConnection`'s data path). Without `portable_body` a
            // later AVM+ value's own references read differently under
            // shared tables, so only the portable form can be stable.
            tern_core::amf3::portable_body(&mut back.values, &limits);
            let again = back.to_bytes();
            let Ok(Message::Data(mut third)) =
                Message::decode(&raw(15, Bytes::from([&[0u8][..], &again].concat())), &limits)
            else {
                panic!("second type-15 form of {d:?} does not decode");
            };
            tern_core::amf3::portable_body(&mut third.values, &limits);
            assert_eq!(third.to_bytes(), again, "type-15 round trip of {d:?} not stable");
        }
        _ => {}
    }
}
