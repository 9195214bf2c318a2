//! Whole-behaviour tests: real client and server connections of every
//! protocol and one hub, driven against each other in virtual time by
//! [`crate::testing`]. They live apart from the modules they exercise, so
//! the hub's own files import no protocol.

mod admin;
mod contract;
mod fanout;
mod flv;
mod hub;
mod ws;
