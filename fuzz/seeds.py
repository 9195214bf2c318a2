#!/usr/bin/env python3
"""Writes seed inputs into fuzz/corpus/<target>/ (git-ignored).

The byte vectors are those of PROTOCOL-NOTES.md plus a scripted RTMP
session (connect, createStream, publish, media, shared object, ping).
Each target's input starts with its control bytes (see the target's doc
comment); the seeds use a few different control values.

Usage: python3 fuzz/seeds.py   (from the repository root or fuzz/)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


# --- AMF0 ---------------------------------------------------------------
def num(x):
    return b"\x00" + struct.pack(">d", x)


def boolean(b):
    return b"\x01" + bytes([1 if b else 0])


def key(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def string(s):
    return b"\x02" + key(s)


def obj(pairs):
    return b"\x03" + b"".join(key(k) + v for k, v in pairs) + b"\x00\x00\x09"


def ecma(pairs):
    return (b"\x08" + struct.pack(">I", len(pairs))
            + b"".join(key(k) + v for k, v in pairs) + b"\x00\x00\x09")


NULL = b"\x05"


def command(name, tx, cmd_obj, *args):
    return string(name) + num(tx) + cmd_obj + b"".join(args)


# --- chunks ---------------------------------------------------------------
def chunks(csid, ts, type_id, stream_id, payload, chunk_size=128):
    assert 2 <= csid < 64
    out = bytes([csid]) + struct.pack(">I", ts)[1:] + struct.pack(">I", len(payload))[1:]
    out += bytes([type_id]) + struct.pack("<I", stream_id)
    first, rest = payload[:chunk_size], payload[chunk_size:]
    out += first
    while rest:
        out += bytes([0xC0 | csid]) + rest[:chunk_size]
        rest = rest[chunk_size:]
    return out


def flv_tag(tag_type, ts, data):
    return (bytes([tag_type]) + struct.pack(">I", len(data))[1:]
            + struct.pack(">I", ts & 0xFFFFFF)[1:] + bytes([ts >> 24]) + b"\x00\x00\x00"
            + data + struct.pack(">I", 11 + len(data)))


CHUNK_VECTORS = [
    h("02 db5565 000004 05 00000000 00989680"),
    h("42 000000 000006 04 0007 ce4c5f73") + h("c2 0007 ce4c6743"),
    h("42 000000 00000a 04 0003 00000000 00001388"),
    h("02 000000 00000a 04 0003 00000000 00001388")
    + h("43 001e61 000019 14 02000c 63726561746553747265616d 00 4008000000000000 05"),
    h("02 000000 00000a 04 0003 00000000 00001388")
    + h("08 001fdd 00001d 14 01000000 020004 706c6179 00 0000000000000000 05 020009 73706565782e666c76")
    + h("c2 0003 00000001 00001388"),
    h("04000000000082140100000002 00086f6e537461747573 00 0000000000000000 05 03 0005 6c6576656c "
      "020006 737461747573 0004 636f6465 020017 4e657453747265616d2e5075626c6973682e5374617274 "
      "000b 6465736372697074696f6e 020000 0007 64657461696c73 02000a 6d697865722d6f757433 0008 "
      "636c69656e746964 00 3ff0000000000000 00 c4 0009"),
    h("04 000000 000038 12 00000000 02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461 "
      "08 00000001 0008 6475726174696f6e 00 0000000000000000 000009"),
    # extended timestamp, then a fmt-3 new message repeating it
    h("05 ffffff 000002 08 01000000 01020304 af01") + h("c5 01020304 af02"),
]

AMF0_VECTORS = [
    h("03 0004 6e616d65 02 0004 4d696b65 0003 616765 00 403e000000000000 0005 616c696173 02 0004 4d696b65 0000 09"),
    h("02 000c 6f6e53747265616d53656e64 08 00000000 0005 76616c7565 02 0001 31 000009"),
    h("08 00000002 0001 30 02 0005 68656c6c6f 0001 31 02 0005 776f726c64 000009"),
    boolean(True) + boolean(False) + NULL + b"\x06" + b"\x07\x00\x01" + b"\x0d",
    h("0a 00000002") + num(1.5) + string("x") + h("0b 0000000000000000 0000"),
    h("0c 00000003") + b"abc" + h("0f 00000002") + b"<a" + b"\x10" + key("Cls") + key("k") + num(2) + b"\x00\x00\x09",
    h("11 04 05") + h("11 06 07 616263") + h("11 09 03 01 04 01"),
]

SO_VECTORS = [
    h("0004 63686174 00000000 00000000 00000000 01 00000000"),
    h("0004 63686174 00000002 00000000 00000000 0b 00000000 08 00000000"),
    h("0004 63686174 00000002 00000000 00000000 03 0000000e 0007 6d657373616765 02 0002 6869"),
    h("0004 63686174 00000003 00000000 00000000 05 00000009 0007 6d657373616765"),
    h("0004 63686174 00000003 00000000 00000000 04 0000000e 0007 6d657373616765 02 0002 6869"),
    h("0004 63686174 00000003 00000000 00000000 06 00000017 02 000f 6d6573736167655472616e736d6974 02 0002 6869"),
    h("0004 63686174 00000003 00000000 00000000 07 00000023 001a 5368617265644f626a6563742e4e6f5772697465416363657373 0005 6572726f72"),
]

CONNECT = command("connect", 1, obj([
    ("app", string("live")), ("flashVer", string("FMLE/3.0")),
    ("tcUrl", string("rtmp://localhost/live?token=1")), ("fpad", boolean(False)),
    ("capabilities", num(15)), ("audioCodecs", num(3191)), ("videoCodecs", num(252)),
    ("objectEncoding", num(0)),
]))


def session():
    """A publisher's session after the handshake, as one byte stream."""
    s = b""
    s += chunks(2, 0, 1, 0, struct.pack(">I", 4096), 128)
    cs = 4096
    s += chunks(3, 0, 20, 0, CONNECT, cs)
    s += chunks(2, 0, 5, 0, struct.pack(">I", 2500000), cs)
    s += chunks(3, 0, 20, 0, command("releaseStream", 2, NULL, string("cam")), cs)
    s += chunks(3, 0, 20, 0, command("FCPublish", 3, NULL, string("cam")), cs)
    s += chunks(3, 0, 20, 0, command("createStream", 4, NULL), cs)
    s += chunks(8, 0, 20, 1, command("publish", 5, NULL, string("cam?key=1"), string("live")), cs)
    s += chunks(4, 0, 18, 1, string("@setDataFrame") + string("onMetaData")
                + ecma([("width", num(640)), ("height", num(480))]), cs)
    s += chunks(4, 0, 8, 1, h("af00 1210"), cs)
    s += chunks(6, 0, 9, 1, h("1700 000000 01640028ffe1"), cs)
    s += chunks(6, 40, 9, 1, h("2701 000000") + bytes(300), cs)
    s += chunks(7, 80, 22, 1, flv_tag(9, 1000, h("2701000000aa")) + flv_tag(8, 1020, h("af01bb")), cs)
    s += chunks(3, 0, 19, 0, SO_VECTORS[0], cs)
    s += chunks(3, 0, 19, 0, SO_VECTORS[2], cs)
    s += chunks(3, 0, 17, 0, b"\x00" + command("custom", 6, NULL, num(1)), cs)
    s += chunks(2, 0, 4, 0, h("0006 00001234"), cs)
    s += chunks(8, 0, 20, 1, command("play", 7, NULL, string("cam"), num(-2)), cs)
    s += chunks(3, 0, 20, 0, command("deleteStream", 8, NULL, num(1)), cs)
    return s


def player():
    s = b""
    s += chunks(3, 0, 20, 0, CONNECT)
    s += chunks(3, 0, 20, 0, command("createStream", 2, NULL))
    s += chunks(2, 0, 4, 0, h("0003 00000001 00000bb8"))
    s += chunks(8, 0, 20, 1, command("play", 3, NULL, string("cam"), num(-2)))
    s += chunks(8, 0, 20, 1, command("pause", 4, NULL, boolean(True), num(0)))
    s += chunks(8, 0, 20, 1, command("seek", 5, NULL, num(10)))
    s += chunks(8, 0, 20, 1, command("closeStream", 0, NULL))
    return s


def message_payloads():
    """(type id, payload) pairs for message_decode."""
    out = [
        (1, struct.pack(">I", 4096)), (2, struct.pack(">I", 3)), (3, struct.pack(">I", 1000)),
        (4, h("0000 00000001")), (4, h("0003 00000001 00001388")), (4, h("0006 00001234")),
        (5, struct.pack(">I", 2500000)), (6, struct.pack(">I", 2500000) + b"\x02"),
        (8, h("af00 1210")), (8, h("9f 4f707573 00")), (9, h("1700 000000 01640028ffe1")),
        (9, h("90 68766331 00")),
        (20, CONNECT), (17, b"\x00" + CONNECT),
        (20, command("createStream", 2, NULL)),
        (20, command("publish", 5, NULL, string("cam?key=1"), string("live"))),
        (20, command("play", 3, NULL, string("cam"), num(-2), num(-1), boolean(True))),
        (20, command("deleteStream", 4, NULL, num(1))),
        (20, command("_result", 1, obj([("fmsVer", string("FMS/3,5,7,7009"))]),
                     obj([("level", string("status")), ("code", string("NetConnection.Connect.Success"))]))),
        (18, string("@setDataFrame") + string("onMetaData") + ecma([("duration", num(0))])),
        (15, b"\x00" + string("onMetaData") + obj([("width", num(1))])),
        (22, flv_tag(9, 1000, h("2701000000aa"))),
        # AMF3 forms: type 17 with AVM+ arguments (an object {k: "v"}), with
        # an AVM+ name and transaction id (Red5 2.x), with two arguments
        # sharing reference tables (py3amf); type 15 with an AVM+ object;
        # type 20 carrying an AVM+ argument.
        (17, b"\x00" + command("onStatus", 0, NULL) + h("110a0b01036b0603760111040c")),
        (17, h("00 1106077375 6d 110403 05 110402")),
        (17, b"\x00" + command("m", 0, NULL) + h("110a0b01036b06037601 110a0100060201")),
        (15, b"\x00" + string("onCue") + h("110a0b01036b06037601")),
        (20, command("_result", 2, NULL, h("110a0b01036b06037601"))),
    ]
    out += [(19, v) for v in SO_VECTORS] + [(16, b"\x00" + SO_VECTORS[2])]
    return out


def amf3_so(value):
    """A type-16 payload (encoding byte 0) using SO `so` and setting `k`
    to, and sending `m` with, the AMF3 `value` after an AVM+ switch."""
    change = struct.pack(">H", 1) + b"k" + b"\x11" + value
    send = b"\x02" + struct.pack(">H", 1) + b"m" + b"\x11" + value
    events = b"".join(bytes([t]) + struct.pack(">I", len(e)) + e
                      for t, e in [(1, b""), (3, change), (6, send)])
    return b"\x00" + struct.pack(">H", 2) + b"so" + struct.pack(">III", 0, 2, 0) + events


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # limits bytes: 0x7f/0xff: larger limits; 0x00/0x00: the smallest.
    lim = [(0xFF, 0xFF), (0x7F, 0x7F), (0x3D, 0x2E), (0x00, 0x00)]
    for i, v in enumerate(CHUNK_VECTORS + [session(), player()]):
        for j, (a, b) in enumerate(lim):
            write("chunk_decoder", f"v{i}_{j}", bytes([[0, 0x41, 0x85, 0xC3][j], a, b, j * 0x55]) + v)
    for i, v in enumerate(AMF0_VECTORS):
        for j, (a, b) in enumerate(lim[:3]):
            write("amf0_decode", f"v{i}_{j}", bytes([a, b]) + v)
    for i, v in enumerate(SO_VECTORS):
        for j, (a, b) in enumerate(lim[:3]):
            write("so_message", f"v{i}_{j}", bytes([a, b]) + v)
    for i, (t, p) in enumerate(message_payloads()):
        write("message_decode", f"v{i}", bytes([t, 0xFF, 0xFF]) + p)
    # AMF3: the published vectors of core/src/amf3/testdata, alone and as
    # the AVM+ values of a type-16 shared-object message.
    td = os.path.join(HERE, "..", "core", "src", "amf3", "testdata")
    for name in sorted(n for n in os.listdir(td) if n.endswith(".bin")):
        with open(os.path.join(td, name), "rb") as f:
            v = f.read()
        for j, (a, b) in enumerate(lim[:3]):
            write("amf3_decode", f"{name[:-4]}_{j}", bytes([a, b]) + v)
            write("amf3_so_message", f"{name[:-4]}_{j}", bytes([a, b]) + amf3_so(v))
    # handshake: a plain C0+C1+C2, a C0 of HTTP, corrupted real handshakes.
    c1 = bytes(8) + bytes(range(256)) * 6
    write("handshake", "plain", bytes([0x43, 0x00, 3]) + c1[:1536] + c1[:1536])
    write("handshake", "http", bytes([0, 0]) + b"GET / HTTP/1.1\r\n")
    write("handshake", "client_in", bytes([0x81, 0x02, 3]) + c1[:1536] + c1[:1536])
    write("handshake", "real_plain", bytes([0, 0x01]))
    write("handshake", "real_digest", bytes([0, 0x03, 0x00, 0x10, 0xFF]))
    for j, mode in enumerate([0x00, 0x07, 0x4E, 0x19, 0x25]):
        write("server_connection", f"publisher_{j}", bytes([[0, 0x41, 0x85, 0xC3, 0][j], 0xFF, 0xFF, mode]) + session())
        write("server_connection", f"player_{j}", bytes([[0, 0x41, 0x85, 0xC3, 0][j], 0xFF, 0xFF, mode]) + player())
    # flv: [mode, la, lb, split, rest]: a small FLV file (header,
    # onMetaData, AVC and AAC sequence headers, frames), a metadata body
    # alone (as ffmpeg and OBS send it), and a player's requests (HTTP-FLV
    # heads; WebSocket frames after the built-in upgrade).
    meta = (string("@setDataFrame") + string("onMetaData")
            + ecma([("duration", num(0)), ("width", num(320)), ("encoder", string("Lavf"))]))
    meta_obj = string("onMetaData") + obj([("filesize", num(0)), ("framerate", num(25))])
    avc_seq = bytes([0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])
    aac_seq = bytes([0xAF, 0, 0x12, 0x10])
    flv_file = (b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
                + flv_tag(18, 0, meta[len(string("@setDataFrame")):]) + flv_tag(9, 0, avc_seq)
                + flv_tag(8, 0, aac_seq) + flv_tag(9, 0, bytes([0x17, 1, 0, 0, 0]) + bytes(40))
                + flv_tag(8, 23, bytes([0xAF, 1]) + bytes(20)) + flv_tag(9, 0x01000028, bytes([0x27, 1, 0, 0, 0]) + bytes(9)))
    heads = [
        b"GET /live/cam.flv HTTP/1.1\r\nHost: h\r\nOrigin: http://x\r\n\r\n",
        b"HEAD /live/room/cam.flv?token=1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST /live/cam.flv HTTP/1.1\r\n\r\n",
        b"GET /cam.flv HTTP/1.1\r\n\r\n",
    ]
    # Masked client frames: a ping, then a close 1000.
    ping = bytes([0x89, 0x84, 1, 2, 3, 4]) + bytes(b ^ k for b, k in zip(b"ping", [1, 2, 3, 4]))
    close = bytes([0x88, 0x82, 1, 2, 3, 4]) + bytes(b ^ k for b, k in zip(struct.pack(">H", 1000), [1, 2, 3, 4]))
    for j, (a, b) in enumerate(lim):
        write("flv", f"file_{j}", bytes([0, a, b, [0, 0x41, 0x85, 0xC3][j]]) + flv_file)
        write("flv", f"meta_{j}", bytes([2, a, b, 0]) + meta)
        write("flv", f"meta_obj_{j}", bytes([0, a, b, 0x41]) + meta_obj)
    for j, head in enumerate(heads):
        write("flv", f"head_{j}", bytes([j & 2, 0xFF, 0xFF, [0, 0x41, 0x85, 0xC3][j]]) + head)
    write("flv", "ws_frames", bytes([1, 0xFF, 0xFF, 0x85]) + ping + close)
    write("flv", "ws_frames_end", bytes([3, 0xFF, 0xFF, 0]) + ping + ping + close)


if __name__ == "__main__":
    main()
