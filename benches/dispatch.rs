//! Commands per second of the in-process parts of a fuzz run: argument generation
//! (`gen::Generator`) and emulator dispatch (`target::emulator::Session`, bytes in, encoded
//! reply bytes out, no socket). Baselines in the same run: serde_json parse + encode of the
//! request alone (the floor of any dispatcher that reads the request as a `Value`).
//! Numbers go in reports/perf.md; the target is >= 200k query-status/s in the emulator.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qmpcheck::gen::Generator;
use qmpcheck::target::emulator::{EmulatorConfig, Outgoing, Session};
use serde_json::Value;

/// Commands per measured iteration (so per-iteration overhead does not count).
const BATCH: usize = 1000;

fn negotiated_session(spec: &Arc<qmpcheck::spec::Spec>) -> Session {
    let mut session = Session::new(spec.clone(), EmulatorConfig::default());
    let replies = session.handle(b"{\"execute\": \"qmp_capabilities\"}\r\n");
    let text = replies.first().and_then(Outgoing::message).cloned().unwrap_or(Value::Null);
    assert_eq!(text, serde_json::json!({"return": {}}), "negotiation");
    session
}

/// Runs `requests` through `session`, returns the bytes of every reply.
fn dispatch(session: &mut Session, requests: &[Vec<u8>]) -> usize {
    let mut bytes = 0;
    for request in requests {
        for out in session.handle(request) {
            bytes += out.to_bytes().len();
        }
    }
    bytes
}

fn dispatch_benches(c: &mut Criterion) {
    let spec = Arc::new(qmpcheck::source::builtin());

    let mut group = c.benchmark_group("gen");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut generator = Generator::new(&spec, 7);
    group.bench_function("next-command", |b| {
        b.iter(|| (0..BATCH).map(|_| generator.next_command().arguments.is_object() as usize).sum::<usize>())
    });
    let mut generator = Generator::new(&spec, 7);
    group.bench_function("next-command+bytes", |b| {
        b.iter(|| (0..BATCH).map(|_| generator.next_command().to_bytes().len()).sum::<usize>())
    });
    group.finish();

    let status: Vec<Vec<u8>> = (0..BATCH).map(|_| b"{\"execute\": \"query-status\"}\r\n".to_vec()).collect();
    let mut generator = Generator::new(&spec, 11);
    // `quit` would end the session (the emulator closes the connection, as QEMU does).
    let generated: Vec<Vec<u8>> = std::iter::repeat_with(|| generator.next_command())
        .filter(|command| command.name != "quit")
        .take(BATCH)
        .map(|command| {
            let mut bytes = command.to_bytes();
            bytes.extend_from_slice(b"\r\n");
            bytes
        })
        .collect();
    let mut session = negotiated_session(&spec);
    let answered = dispatch(&mut session, &status);
    assert!(answered > BATCH * 40, "query-status replies: {answered} bytes");

    let mut group = c.benchmark_group("emulator");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("query-status", |b| b.iter(|| dispatch(&mut session, black_box(&status))));
    let mut session = negotiated_session(&spec);
    dispatch(&mut session, &generated);
    assert!(!session.is_closed() && !session.is_hung(), "generated commands end the session");
    group.bench_function("generated-commands", |b| b.iter(|| dispatch(&mut session, black_box(&generated))));
    group.bench_function("baseline-parse+encode", |b| {
        b.iter(|| {
            status
                .iter()
                .map(|r| {
                    let value: Value = serde_json::from_slice(r).unwrap_or(Value::Null);
                    serde_json::to_vec(&value).map_or(0, |v| v.len())
                })
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, dispatch_benches);
criterion_main!(benches);
