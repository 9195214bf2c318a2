//! AMF0 encode and decode of the values a server handles most: a
//! `connect` command object and an `onMetaData` ECMA array.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tern_core::Limits;
use tern_core::amf0::{self, Value};

fn connect_object() -> Vec<Value> {
    vec![
        Value::string("connect"),
        Value::Number(1.0),
        Value::object([
            ("app", Value::string("live/room1")),
            ("type", Value::string("nonprivate")),
            ("flashVer", Value::string("FMLE/3.0 (compatible; FMSc/1.0)")),
            ("tcUrl", Value::string("rtmp://127.0.0.1:1935/live/room1")),
            ("fpad", Value::Boolean(false)),
            ("capabilities", Value::Number(15.0)),
            ("audioCodecs", Value::Number(4071.0)),
            ("videoCodecs", Value::Number(252.0)),
            ("videoFunction", Value::Number(1.0)),
            ("objectEncoding", Value::Number(0.0)),
        ]),
    ]
}

fn metadata() -> Vec<Value> {
    let props = [
        ("duration", Value::Number(0.0)),
        ("width", Value::Number(1280.0)),
        ("height", Value::Number(720.0)),
        ("videodatarate", Value::Number(2372.0)),
        ("framerate", Value::Number(25.0)),
        ("videocodecid", Value::Number(7.0)),
        ("audiodatarate", Value::Number(128.0)),
        ("audiosamplerate", Value::Number(44100.0)),
        ("audiosamplesize", Value::Number(16.0)),
        ("stereo", Value::Boolean(true)),
        ("audiocodecid", Value::Number(10.0)),
        ("encoder", Value::string("Lavf59.27.100")),
        ("filesize", Value::Number(0.0)),
    ];
    vec![
        Value::string("@setDataFrame"),
        Value::string("onMetaData"),
        Value::EcmaArray {
            count: props.len() as u32,
            properties: props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("amf0");
    let limits = Limits::default();
    for (name, values) in [("connect", connect_object()), ("metadata", metadata())] {
        let mut wire = Vec::new();
        for v in &values {
            amf0::encode(v, &mut wire);
        }
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut out = Vec::with_capacity(4096);
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                out.clear();
                for v in &values {
                    amf0::encode(black_box(v), &mut out);
                }
                black_box(out.len())
            })
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| amf0::decode_all(black_box(&wire), &limits))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
