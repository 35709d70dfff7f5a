//! Throughput of every spec parser on its seed (MB/s), and of building the model from a
//! recorded 207 KB `query-qmp-schema` reply. Numbers go in reports/perf.md.

mod support;

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qmpcheck::spec;

fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("spec-parse");
    let legacy = [
        ("legacy/000-commands", "000_6c43ee94cdfc87ea.txt"),
        ("legacy/001-commands", "001_c6909e2e14ac2656.txt"),
        ("legacy/004-events", "004_2c2e15d7dcde0b66.txt"),
    ];
    for (id, file) in legacy {
        let text = seed(file);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(id, |b| b.iter(|| spec::legacy::parse(&text, file)));
    }
    let hx = seed("002_93f31401e52ab94f.txt");
    group.throughput(Throughput::Bytes(hx.len() as u64));
    group.bench_function("hx/002-diff", |b| b.iter(|| spec::hx::parse(&hx, "002")));
    let qapi = seed("003_3e9b81ae133ae229.txt");
    group.throughput(Throughput::Bytes(qapi.len() as u64));
    group.bench_function("qapi/003-migration", |b| b.iter(|| spec::qapi::parse(&qapi, "003", &mut |_| None)));
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/qemu-7.2/qemu-system-x86_64.json");
    if let Ok(text) = std::fs::read_to_string(&recorded) {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("introspect/qemu-7.2", |b| b.iter(|| spec::introspect::parse(&text, "rec")));
        // The reply as QEMU sends it (`{"return": [...]}`, 207 KB), as `qemu:BINARY` loads it.
        if let Some(schema) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|t| t.get("query-qmp-schema").cloned())
        {
            let reply = support::values::to_qemu_json(&serde_json::json!({ "return": schema }));
            let reply = String::from_utf8(reply).unwrap_or_default();
            group.throughput(Throughput::Bytes(reply.len() as u64));
            group.bench_function("introspect/qemu-7.2-reply", |b| {
                b.iter(|| spec::introspect::parse(&reply, "qemu:reply"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
