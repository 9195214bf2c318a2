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
//!   through their accessors; audio/video through the tag inspectors.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tern_core::Limits;
use tern_core::chunk::RawMessage;
use tern_core::message::{
    AudioTag, ClientCommand, Message, ServerReply, VideoTag, split_stream_name,
};
use tern_core_fuzz::limits_from;

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
});
