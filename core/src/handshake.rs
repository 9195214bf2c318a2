//! The RTMP handshake (C0/C1/C2 ↔ S0/S1/S2), plain and digest.
