//! The reply path: stream decode and decode + validate, each against baselines in the same
//! run (numbers and ratios in reports/perf.md).
//!
//! Inputs (benches/support/corpus.rs, generated from the QEMU 7.2 model and checked against
//! its schemas first): `query-blockstats` with 1, 100 and 1000 devices, the recorded
//! `query-qmp-schema` replies of QEMU 7.2 and 10.0, and a stream of 10k small replies and
//! events.
//!
//! - `decode/*`: framing + parse. `wire-decoder` is qmpcheck's stream decoder (framing, then
//!   serde_json into `Value`); `serde-value` is `serde_json` into `Value` alone (a stream
//!   through its own `StreamDeserializer`); `sonic-dom` is sonic-rs's DOM parse, the
//!   speed-of-light baseline.
//! - `validate/*`: decode + check against the reply's JSON Schema. `naive` is serde_json
//!   `Value` + the jsonschema crate (validators compiled once, outside the loop); `fast` is
//!   `check::fast::FastValidator::check_message` on the text; `fast-stream` is
//!   `check::fast::FastStream` fed in 64 KiB reads, framing included; `sonic-dom` again as
//!   the reference the target is stated against.

mod support;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use qmpcheck::check::fast::{FastStream, FastValidator};
use qmpcheck::check::schema::Validators;
use qmpcheck::wire::stream::Decoder;
use serde_json::Value;

use support::corpus;

/// One bench input: QMP texts each ending in CRLF, and what each answers.
struct Input {
    id: String,
    bytes: Vec<u8>,
    /// Per text: the command of a reply, `None` for an event.
    expect: Vec<Option<String>>,
}

impl Input {
    fn reply(id: &str, reply: corpus::Reply) -> Input {
        let mut bytes = reply.text;
        bytes.extend_from_slice(b"\r\n");
        Input { id: id.to_string(), bytes, expect: vec![Some(reply.command)] }
    }

    /// Each text without its CRLF (lines found with SIMD memchr, so splitting costs the
    /// baselines next to nothing).
    fn texts(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        memchr::memchr_iter(b'\n', &self.bytes).filter_map(move |end| {
            let line = self.bytes.get(start..end)?;
            start = end + 1;
            let text = line.strip_suffix(b"\r").unwrap_or(line);
            (!text.is_empty()).then_some(text)
        })
    }
}

fn inputs() -> (Vec<Input>, Validators, FastValidator) {
    let spec = corpus::model();
    let validators = corpus::validators(&spec);
    let fast = FastValidator::new(&spec);
    let mut inputs = Vec::new();
    for devices in [1, 100, 1000] {
        let reply = corpus::blockstats(&spec, &validators, devices);
        inputs.push(Input::reply(&format!("blockstats-{devices}"), reply));
    }
    for version in ["7.2", "10.0"] {
        inputs
            .push(Input::reply(&format!("qmp-schema-{version}"), corpus::schema_reply(&validators, version)));
    }
    let stream = corpus::stream(&spec, &validators, 10_000);
    inputs.push(Input { id: "stream-10k".into(), bytes: stream.bytes, expect: stream.expect });
    for input in &inputs {
        eprintln!("input {}: {} bytes, {} texts", input.id, input.bytes.len(), input.expect.len());
    }
    (inputs, validators, fast)
}

fn decode_wire(bytes: &[u8]) -> usize {
    let mut decoder = Decoder::default();
    decoder.feed(bytes);
    let mut count = 0;
    while let Some(text) = decoder.next_text() {
        count += usize::from(text.is_ok());
    }
    count
}

fn decode_serde(bytes: &[u8]) -> usize {
    serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().filter(Result::is_ok).count()
}

fn decode_sonic(input: &Input) -> usize {
    input.texts().filter(|t| sonic_rs::from_slice::<sonic_rs::Value>(t).is_ok()).count()
}

/// serde_json `Value` + jsonschema, per text.
fn validate_naive(input: &Input, validators: &Validators) -> usize {
    let mut valid = 0;
    for (text, expect) in input.texts().zip(&input.expect) {
        let Ok(value) = serde_json::from_slice::<Value>(text) else { continue };
        let ok = match (expect, value.get("return"), value.get("event").and_then(Value::as_str)) {
            (Some(command), Some(ret), _) => validators.validate_return(command, ret).is_ok(),
            (None, _, Some(event)) => {
                let empty = Value::Object(serde_json::Map::new());
                validators.validate_event(event, value.get("data").unwrap_or(&empty)).is_ok()
            }
            _ => false,
        };
        valid += usize::from(ok);
    }
    valid
}

fn validate_fast(input: &Input, fast: &FastValidator) -> usize {
    let texts = input.texts().zip(&input.expect);
    texts.filter(|(text, expect)| fast.check_message(expect.as_deref(), text).is_ok()).count()
}

fn validate_fast_stream(input: &Input, fast: &FastValidator, stream: &mut FastStream) -> usize {
    let mut valid = 0;
    let mut expect = input.expect.iter();
    for read in input.bytes.chunks(64 << 10) {
        stream.feed(read);
        loop {
            let command = expect.clone().next().and_then(|c| c.as_deref());
            let Some(framed) = stream.next_message(fast, command) else { break };
            expect.next();
            valid += usize::from(framed.result.is_ok());
        }
    }
    valid
}

fn replies(c: &mut Criterion) {
    let (inputs, validators, fast) = inputs();
    for input in &inputs {
        let texts = input.expect.len();
        assert_eq!(decode_wire(&input.bytes), texts, "{}: wire decoder", input.id);
        assert_eq!(decode_sonic(input), texts, "{}: sonic-rs", input.id);
        assert_eq!(validate_naive(input, &validators), texts, "{}: naive validation", input.id);
        assert_eq!(validate_fast(input, &fast), texts, "{}: fast validation", input.id);
        assert_eq!(
            validate_fast_stream(input, &fast, &mut FastStream::new()),
            texts,
            "{}: fast stream",
            input.id
        );
    }

    let mut group = c.benchmark_group("decode");
    for input in &inputs {
        group.throughput(Throughput::Bytes(input.bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("wire-decoder", &input.id), input, |b, i| {
            b.iter(|| decode_wire(black_box(&i.bytes)))
        });
        group.bench_with_input(BenchmarkId::new("serde-value", &input.id), input, |b, i| {
            b.iter(|| decode_serde(black_box(&i.bytes)))
        });
        group.bench_with_input(BenchmarkId::new("sonic-dom", &input.id), input, |b, i| {
            b.iter(|| decode_sonic(black_box(i)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("validate");
    for input in &inputs {
        group.throughput(Throughput::Bytes(input.bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("naive", &input.id), input, |b, i| {
            b.iter(|| validate_naive(black_box(i), &validators))
        });
        group.bench_with_input(BenchmarkId::new("fast", &input.id), input, |b, i| {
            b.iter(|| validate_fast(black_box(i), &fast))
        });
        let mut stream = FastStream::new();
        group.bench_with_input(BenchmarkId::new("fast-stream", &input.id), input, |b, i| {
            b.iter(|| validate_fast_stream(black_box(i), &fast, &mut stream))
        });
        group.bench_with_input(BenchmarkId::new("sonic-dom", &input.id), input, |b, i| {
            b.iter(|| decode_sonic(black_box(i)))
        });
    }
    group.finish();

    // The stream again in messages per second.
    let mut group = c.benchmark_group("stream-items");
    if let Some(stream) = inputs.iter().find(|i| i.id == "stream-10k") {
        group.throughput(Throughput::Elements(stream.expect.len() as u64));
        group.bench_function("wire-decoder", |b| b.iter(|| decode_wire(black_box(&stream.bytes))));
        group.bench_function("naive-validate", |b| b.iter(|| validate_naive(black_box(stream), &validators)));
        let mut fast_stream = FastStream::new();
        group.bench_function("fast-stream", |b| {
            b.iter(|| validate_fast_stream(black_box(stream), &fast, &mut fast_stream))
        });
    }
    group.finish();

    let spec = corpus::model();
    let mut group = c.benchmark_group("compile");
    group.bench_function("fast-validator-qemu-7.2", |b| b.iter(|| FastValidator::new(black_box(&spec))));
    group.finish();
}

criterion_group!(benches, replies);
criterion_main!(benches);
