#!/usr/bin/env python3
"""py3amf (PyPI 0.9.1, `import pyamf.amf3`) as the independent AMF3 codec of
tests/tests/e2e/amf3_py3amf.rs.

`encode`: prints one JSON line {"name", "hex"} per case: py3amf's AMF3
encoding of the case's Python value (each with fresh reference tables).

`decode`: reads JSON lines {"name", "hex"} (tern's encodings of the same
cases) from stdin, decodes each with py3amf and prints {"name", "ok",
"got"}: whether the decoded value equals the case's Python value (numbers
compared with their type: int is not float).

`bodies`: prints {"name", "hex"} per message body of `bodies()`: the AMF0
values of a type-17 command or type-15 data message as py3amf writes them
with `use_amf3` (one AMF0 encoder, so ONE set of AMF3 reference tables for
all the AVM+ values of the body: later values refer to strings and traits
of earlier ones).

`read_bodies`: reads {"name", "hex"} lines (bodies tern wrote) and decodes
each with one py3amf AMF0 decoder (shared AMF3 tables, as py3amf and Red5
read a message), printing {"name", "ok", "got"} against `bodies()`.
"""
import datetime
import json
import sys

import pyamf
import pyamf.amf3 as amf3
import pyamf.flex as flex


class Point(object):
    """A registered class with sealed members x and y (not dynamic)."""

    class __amf__:
        static = ("x", "y")
        dynamic = False

    def __init__(self, x=None, y=None):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and same(self.x, other.x) and same(self.y, other.y)

    def __repr__(self):
        return "Point(%r, %r)" % (self.x, self.y)


pyamf.register_class(Point, "tern.Point")

SHARED = [1, 2]


def cases():
    return {
        "undefined": pyamf.Undefined,
        "null": None,
        "false": False,
        "true": True,
        "int_0": 0,
        "int_127": 127,
        "int_128": 128,
        "int_0x4000": 0x4000,
        "int_0x200000": 0x200000,
        "int_max": 2**28 - 1,
        "int_min": -(2**28),
        "int_neg": -123,
        "double": 0.2,
        "double_neg": -2.5,
        "double_past_int_range": float(2**28),
        "double_huge": 1e300,
        "string_empty": "",
        "string": "hello",
        "string_unicode": "ƒøø テスト",
        "date": datetime.datetime(2026, 12, 6, 10, 0, 0, 123000),
        "array_dense": [1, "a", None, True, 0.5],
        "array_string_refs": ["ab", "ab", "cd", "ab"],
        "array_assoc": pyamf.MixedArray(a=1, b="x"),
        "object": {"name": "x", "n": 5},
        "object_nested": {"a": {"b": [1, 2]}, "c": "a"},
        "typed_object": Point(1, "two"),
        "typed_traits_ref": [Point(1, 2), Point(3, 4)],
        "bytearray": amf3.ByteArray(b"\x00\x01hello\xff"),
        "object_ref": [SHARED, SHARED],
        "array_collection": flex.ArrayCollection([1, "a"]),
        "object_proxy": flex.ObjectProxy(pyamf.ASObject({"k": 1})),
    }


# Decoded by py3amf only (py3amf writes no dictionaries).
DECODE_ONLY = {
    "dictionary": ({"k": 1, 2: "two"}, False),
}


def same(a, b):
    if isinstance(a, flex.ObjectProxy) or isinstance(b, flex.ObjectProxy):
        return (
            type(a) is type(b) and same(a._amf_object, b._amf_object)
        )
    if isinstance(a, flex.ArrayCollection) or isinstance(b, flex.ArrayCollection):
        return type(a) is type(b) and same(list(a), list(b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return type(a) is type(b) and a == b
    if isinstance(a, amf3.ByteArray) or isinstance(b, amf3.ByteArray):
        return (
            isinstance(a, amf3.ByteArray)
            and isinstance(b, amf3.ByteArray)
            and a.getvalue() == b.getvalue()
        )
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a.keys()) == set(b.keys()) and all(same(a[k], b[k]) for k in a)
    if a is pyamf.Undefined or b is pyamf.Undefined:
        return a is b
    return type(a) is type(b) and a == b


def bodies():
    """Message bodies: (AMF0 prefix values, AVM+ values), by name."""
    return {
        # A call: name and transaction id in AMF0, as Flash writes them.
        "command": (
            ["m", 0],
            [None, {"k": "v"}, {"k": "v"}, "v", Point(1, "two"), Point(3, "two")],
        ),
        # NetStream.send data: every value AVM+. The last Point repeats a
        # string within itself, which only a reader whose tables match the
        # writer's reads right.
        "data": (
            [],
            ["onText", {"text": "hi"}, {"text": "hi"}, "hi", Point(1, "hi"), Point("zz", "zz")],
        ),
    }


def encode_bodies():
    for name, (amf0_values, avm_values) in bodies().items():
        enc = pyamf.get_encoder(pyamf.AMF0)
        for v in amf0_values:
            enc.writeElement(v)
        enc.use_amf3 = True
        for v in avm_values:
            enc.writeElement(v)
        print(json.dumps({"name": name, "hex": enc.stream.getvalue().hex()}))


def read_bodies():
    expected = bodies()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        name = case["name"]
        amf0_values, avm_values = expected[name]
        dec = pyamf.get_decoder(pyamf.AMF0, bytes.fromhex(case["hex"]))
        got = []
        try:
            while dec.stream.remaining():
                got.append(dec.readElement())
            want = [float(v) if type(v) is int else v for v in amf0_values] + avm_values
            ok = len(got) == len(want) and all(
                (g == w if name == "command" and i < 2 else same(g, w))
                for i, (g, w) in enumerate(zip(got, want))
            )
        except Exception as e:  # report, the Rust test fails on ok=false
            got, ok = "error: %r" % (e,), False
        print(json.dumps({"name": name, "ok": ok, "got": repr(got)}))


def encode():
    for name, value in cases().items():
        enc = amf3.Encoder()
        enc.writeElement(value)
        print(json.dumps({"name": name, "hex": enc.stream.getvalue().hex()}))


def decode():
    expected = dict(cases())
    expected.update(DECODE_ONLY)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        case = json.loads(line)
        name = case["name"]
        dec = amf3.Decoder(bytes.fromhex(case["hex"]))
        try:
            got = dec.readElement()
            left = dec.stream.remaining()
            ok = same(got, expected[name]) and left == 0
        except Exception as e:  # report, the Rust test fails on ok=false
            got, ok = "error: %r" % (e,), False
        print(json.dumps({"name": name, "ok": ok, "got": repr(got)}))


if __name__ == "__main__":
    {
        "encode": encode,
        "decode": decode,
        "bodies": encode_bodies,
        "read_bodies": read_bodies,
    }[sys.argv[1]]()
