//! RTMP connection state machines (server and client side), sans-IO.
