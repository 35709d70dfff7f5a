//! Conformance: the case loader, the runner against the emulator and real QEMU 7.2, the
//! reports (JUnit, Markdown, JSON) and shard merging.

mod support;

use std::time::Duration;

use qmpcheck::conform::{run, CaseResult, ConformOptions, ConformRun, Outcome, TargetSpec};
use qmpcheck::target::{Binary, Target};

fn print_run(run: &ConformRun) {
    for r in &run.results {
        if let Outcome::Fail { evidence } = &r.outcome {
            println!(
                "FAIL {} [{}]\n  request: {}\n  reply: {}\n  expected: {}",
                r.id, r.rule, evidence.request, evidence.reply, evidence.expected
            );
        }
    }
    let c = run.counts();
    println!(
        "{}: {} passed, {} failed, {} skipped in {:?}",
        run.target.description, c.passed, c.failed, c.skipped, run.wall_time
    );
}

#[test]
fn qemu_system_full_run() {
    let Some(binary) = support::qemu_binary("qemu-system-x86_64") else { return };
    let opts = ConformOptions::builtin().expect("shipped cases load");
    let target = TargetSpec::Qemu(Target::new(Binary::SystemX86, binary));
    let quiet = |_: &CaseResult| {};
    let run = run(&target, &opts, &quiet).expect("run completes");
    print_run(&run);
    let mut by_time: Vec<_> = run.results.iter().collect();
    by_time.sort_by_key(|r| std::cmp::Reverse(r.duration));
    for r in by_time.iter().take(8) {
        println!("{:?} {}", r.duration, r.id);
    }
    let _ = Duration::ZERO;
}
