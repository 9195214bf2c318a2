//! RTMP messages: the meaning of a [`RawMessage`](crate::chunk::RawMessage)'s payload.
