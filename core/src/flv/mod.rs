//! FLV: the file format, and live FLV playback over HTTP and WebSocket,
//! sans-IO.
//!
//! - [`tag`]: the file header and tags (writer, and the borrowed reader
//!   [`FlvTagView`](tag::FlvTagView));
//! - [`fanout`]: the hub's third [`FanoutCodec`](crate::hub::FanoutCodec):
//!   each relayed message becomes one tag wrapped for its transport, built
//!   once for every player with the same framing and start (see the
//!   module's notes on timestamps);
//! - [`FlvConnection`]: one HTTP-FLV or WS-FLV player, driven like every
//!   server connection ([`crate::connection::Connection`]).

mod connection;
pub mod fanout;
pub mod tag;

pub use connection::{
    FlvConfig, FlvConnection, FlvError, FlvTarget, PROTOCOL,
    allow_origin as connection_allow_origin,
};
pub use fanout::Framing;
