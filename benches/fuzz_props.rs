//! Inputs per second of each cargo-fuzz target's property (`qmpcheck::fuzz::props`), run
//! without libFuzzer's instrumentation over the target's committed corpus
//! (`fuzz/corpus-seeds/TARGET` and `fuzz/corpus-grown/TARGET`, the inputs a campaign starts
//! from). This is the ceiling of the target's exec/s under libFuzzer; `benches/fuzz/run.sh`
//! measures the instrumented rate, and reports/perf.md compares the two (target: 50k exec/s).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qmpcheck::fuzz::props::TARGETS;

/// Every file of `fuzz/corpus-seeds/TARGET` and `fuzz/corpus-grown/TARGET`, sorted by name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for kind in ["corpus-seeds", "corpus-grown"] {
        let dir = root.join(kind).join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        files.extend(
            paths.iter().map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))),
        );
    }
    files
}

fn fuzz_prop_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("fuzz-props");
    for (name, property) in TARGETS {
        let inputs = corpus(name);
        assert!(inputs.len() > 10, "{name}: only {} corpus files", inputs.len());
        group.throughput(Throughput::Elements(inputs.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for input in &inputs {
                    property(black_box(input));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fuzz_prop_benches);
criterion_main!(benches);
