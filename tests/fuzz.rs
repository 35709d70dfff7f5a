//! The fuzz campaign, its findings store, minimize and replay: against the emulator's fault
//! modes and against real QEMU 7.2.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmpcheck::fuzz::campaign::{self, FuzzOptions};
use qmpcheck::fuzz::store::{self, FindingContext, FindingRecord, Recorded, Store, TEMP_PREFIX};
use qmpcheck::fuzz::transcript::{Origin, Step, Transcript};
use qmpcheck::fuzz::{minimize, props, replay, FindingClass, FuzzTarget, ReplayOptions, Signature};
use qmpcheck::spec::Spec;
use qmpcheck::target::emulator::EmulatorConfig;
use qmpcheck::target::{Binary, Target};
use serde_json::json;

/// The committed seed corpora are exactly what `props::seeds` derives (bless with
/// `QMPCHECK_BLESS_SEEDS=1`), and every seed satisfies its target's property.
#[test]
fn committed_seed_corpora_are_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus-seeds");
    let bless = std::env::var("QMPCHECK_BLESS_SEEDS").as_deref() == Ok("1");
    let expected_counts = [
        ("decoder_split", 3),
        ("spec_legacy", 2),
        ("spec_hx", 2),
        ("spec_qapi", 2),
        ("spec_introspect", 4),
        ("emulator_session", 12),
        ("reply_validation", 5),
    ];
    for ((target, property), (name, count)) in props::TARGETS.iter().zip(expected_counts) {
        assert_eq!(*target, name);
        let seeds = props::seeds(target);
        assert_eq!(seeds.len(), count, "{target}");
        let dir = root.join(target);
        if bless {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for (file, bytes) in &seeds {
                std::fs::write(dir.join(file), bytes).unwrap();
            }
        }
        let mut on_disk: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        on_disk.sort();
        let names: Vec<String> = seeds.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(on_disk, names, "{target}: run with QMPCHECK_BLESS_SEEDS=1 to rewrite");
        for (file, bytes) in &seeds {
            assert_eq!(&std::fs::read(dir.join(file)).unwrap(), bytes, "{target}/{file} differs");
            property(bytes);
        }
    }
    let targets =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets")).unwrap().count();
    assert_eq!(targets, props::TARGETS.len(), "one shim per property");
}

/// Each property run in a loop over its seeds, in process (the exec/s a fuzzer can reach
/// at best, before coverage instrumentation).
#[test]
fn fuzz_properties_in_process_exec_per_sec() {
    for (target, property) in props::TARGETS {
        let seeds = props::seeds(target);
        let started = Instant::now();
        let mut runs = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            for (_, bytes) in &seeds {
                property(bytes);
                runs += 1;
            }
        }
        println!("{target}: {:.0} exec/s over its seeds", runs as f64 / started.elapsed().as_secs_f64());
        assert!(runs >= seeds.len() as u64);
    }
}

fn record(signature: Signature) -> FindingRecord {
    let mut transcript = Transcript::new();
    transcript.sent(Some(3), b"{\"execute\":\"stop\",\"id\":1}\r\n");
    FindingRecord {
        class: signature.class(),
        command: signature.command().to_string(),
        detail: "test".into(),
        transcript,
        reproducer: vec![Step {
            command: "stop".into(),
            origin: Origin::Generated { id: json!(1) },
            bytes: b"{\"execute\":\"stop\",\"id\":1}\r\n".to_vec(),
        }],
        stderr: "qemu: boom\n".into(),
        command_line: vec!["qemu-system-x86_64".into(), "-S".into()],
        context: FindingContext {
            qemu_version: "7.2.0".into(),
            target: "emulated".into(),
            seed: 9,
            iteration: 3,
            mutator: None,
        },
        signature,
    }
}

#[test]
fn store_survives_a_crash_between_temp_write_and_rename() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cleanup) = Store::open(dir.path()).unwrap();
    assert!(cleanup.removed.is_empty());
    let done = store.record(&record(Signature::hang("stop"))).unwrap();
    let Recorded::New { dir: done_dir } = done else { panic!("first record is new") };
    for file in
        ["meta.json", "transcript.jsonl", "reproducer.json", "reproducer.qmp", "stderr.txt", "README.txt"]
    {
        assert!(done_dir.join(file).is_file(), "{file} written");
    }
    // A crash while a second finding was assembled in its temp folder, one while meta.json
    // of the first was being bumped, and a finding folder whose meta.json never came.
    let findings = dir.path().join("findings");
    let half = findings.join(format!("{TEMP_PREFIX}crash_stop-1234-0"));
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("transcript.jsonl"), b"{\"dir\":\"send\"").unwrap();
    std::fs::write(done_dir.join(format!("{TEMP_PREFIX}meta.json-1234-1")), b"{\"class\":").unwrap();
    let no_meta = findings.join("hang_cont-00000000");
    std::fs::create_dir(&no_meta).unwrap();
    std::fs::write(no_meta.join("transcript.jsonl"), b"").unwrap();
    std::fs::write(dir.path().join(format!("{TEMP_PREFIX}state.json-1-2")), b"{").unwrap();

    let (store, cleanup) = Store::open(dir.path()).unwrap();
    assert_eq!(cleanup.removed.len(), 4, "{:?}", cleanup.removed);
    assert!(!half.exists() && !no_meta.exists());
    assert!(!done_dir.join(format!("{TEMP_PREFIX}meta.json-1234-1")).exists());
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, done_dir);
    assert_eq!(listed[0].1.signature, "hang:stop:");
    assert_eq!(listed[0].1.count, 1);
    let readme = std::fs::read_to_string(done_dir.join("README.txt")).unwrap();
    assert!(readme.contains("socat - UNIX-CONNECT:qmp.sock"), "{readme}");
    assert_eq!(
        std::fs::read(done_dir.join("reproducer.qmp")).unwrap(),
        b"{\"execute\":\"stop\",\"id\":1}\r\n"
    );
}

#[test]
fn same_signature_twice_is_one_folder_with_count_two() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path()).unwrap();
    let sig = Signature::crash("device_add", "SIGABRT", "x.c:12: f: Assertion `a' failed.");
    let first = store.record(&record(sig.clone())).unwrap();
    let again = Signature::crash("device_add", "SIGABRT", "x.c:99: f: Assertion `a' failed.");
    let second = store.record(&record(again)).unwrap();
    assert!(matches!(first, Recorded::New { .. }));
    assert_eq!(second, Recorded::Duplicate { dir: first.dir().to_path_buf(), count: 2 });
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.count, 2);
    assert_eq!(listed[0].1.signature, "crash:device_add:SIGABRT x.c:N: f: Assertion `a' failed.");
    let other = store.record(&record(Signature::crash("device_add", "SIGSEGV", ""))).unwrap();
    assert!(matches!(other, Recorded::New { .. }));
    assert_eq!(store.list().unwrap().len(), 2);
}

/// The QEMU 7.2 model cut to a few commands, so a fault on one of them fires quickly.
fn small_model() -> Arc<Spec> {
    let mut spec = qmpcheck::source::builtin();
    let keep = ["qmp_capabilities", "query-version", "query-status", "query-name", "stop", "cont"];
    spec.commands.retain(|name, _| keep.contains(&name.as_str()));
    assert_eq!(spec.commands.len(), 6);
    Arc::new(spec)
}

fn emulated(fault: &str) -> FuzzTarget {
    FuzzTarget::Emulator {
        model: small_model(),
        config: EmulatorConfig { fault: Some(fault.parse().unwrap()), ..Default::default() },
    }
}

fn options(target: FuzzTarget, out: &Path, iterations: u64) -> FuzzOptions {
    let mut opts = FuzzOptions::new(target, out);
    opts.model = Some(small_model());
    opts.iterations = Some(iterations);
    opts.seed = 42;
    opts.reply_timeout = Duration::from_millis(300);
    opts
}

/// A fault on one command yields one finding per signature, which minimizes to that one
/// command and replays.
fn fault_campaign(fault: &str, command: &str, expected_signature: &str, class: FindingClass) {
    let out = tempfile::tempdir().unwrap();
    let summary = campaign::run(&options(emulated(fault), out.path(), 150), &|_| {}).unwrap();
    let c = &summary.counters;
    assert!(c.add_up(), "{c:?}");
    assert_eq!(c.iterations, 150);
    let of_class: Vec<_> = summary.findings.iter().filter(|f| f.class == class).collect();
    assert_eq!(of_class.len(), 1, "{:#?}", summary.findings);
    let finding = of_class[0];
    assert_eq!(finding.signature, expected_signature);
    let class_count = c.findings.get(class.as_str()).copied().unwrap_or(0);
    assert!(class_count >= 2, "the fault fires more than once in 150 iterations: {c:?}");
    assert_eq!(finding.count, class_count, "every sighting bumped the one folder");
    assert_eq!(c.restarts, c.deaths + c.hangs);
    let on_disk = std::fs::read_dir(out.path().join("findings")).unwrap().count();
    assert_eq!(on_disk, summary.findings.len());

    let opts = ReplayOptions {
        reply_timeout: Duration::from_millis(300),
        ..ReplayOptions::from_meta(&finding.dir, small_model()).unwrap()
    };
    let min = minimize(&finding.dir, &opts).unwrap();
    assert!(min.reproduced);
    assert_eq!(min.steps_after, 1, "{min:?}");
    let steps = store::read_reproducer(&finding.dir).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].command, command);
    assert!(store::read_meta(&finding.dir).unwrap().minimized);
    let replayed = replay(&finding.dir, &opts).unwrap();
    assert!(replayed.reproduced, "{replayed:?}");
    assert_eq!(replayed.got.as_deref(), Some(expected_signature));
}

#[test]
fn emulator_dying_on_stop_gives_one_crash_finding() {
    fault_campaign("die@stop", "stop", "crash:stop:connection closed", FindingClass::Crash);
}

#[test]
fn emulator_hanging_on_cont_gives_one_hang_finding() {
    fault_campaign("hang@cont", "cont", "hang:cont:", FindingClass::Hang);
}

#[test]
fn garbage_replies_are_w5_violations_and_the_session_resyncs() {
    let out = tempfile::tempdir().unwrap();
    let summary =
        campaign::run(&options(emulated("garbage:1@query-name"), out.path(), 120), &|_| {}).unwrap();
    let c = &summary.counters;
    assert!(c.add_up(), "{c:?}");
    assert_eq!(c.hangs, 0, "a garbled reply is resynchronised, not a hang: {c:?}");
    let sigs: Vec<&str> = summary.findings.iter().map(|f| f.signature.as_str()).collect();
    assert!(sigs.contains(&"violation:query-name:W5"), "{sigs:?}");
}

#[test]
fn resume_continues_the_same_sequence() {
    let target = || FuzzTarget::Emulator { model: small_model(), config: EmulatorConfig::default() };
    let whole = tempfile::tempdir().unwrap();
    let straight = campaign::run(&options(target(), whole.path(), 120), &|_| {}).unwrap();

    let parts = tempfile::tempdir().unwrap();
    let mut opts = options(target(), parts.path(), 50);
    opts.state_every = 10;
    let first = campaign::run(&opts, &|_| {}).unwrap();
    assert_eq!(first.counters.iterations, 50);
    let state = Store::open(parts.path()).unwrap().0.load_state().unwrap().unwrap();
    assert_eq!(state.iteration, 50);
    opts.iterations = Some(120);
    opts.resume = true;
    opts.seed = 7; // the state's seed wins
    let resumed = campaign::run(&opts, &|_| {}).unwrap();
    assert_eq!(resumed.seed, 42);
    assert_eq!(resumed.counters.iterations, 120);
    let (a, b) = (&straight.counters, &resumed.counters);
    assert_eq!((a.generated, a.mutated, a.denied), (b.generated, b.mutated, b.denied));
    assert_eq!(a.per_mutator, b.per_mutator);
    assert!(b.add_up(), "{b:?}");
    let logged = std::fs::read_to_string(parts.path().join("cases.log")).unwrap();
    assert!(logged.lines().next().unwrap().contains("\"iteration\":50"), "{logged:.200}");
}

#[test]
fn emulator_exec_per_sec() {
    let out = tempfile::tempdir().unwrap();
    let target =
        FuzzTarget::Emulator { model: qmpcheck::fuzz::props::model(), config: EmulatorConfig::default() };
    let mut opts = FuzzOptions::new(target, out.path());
    opts.model = Some(qmpcheck::fuzz::props::model());
    opts.iterations = Some(1000);
    let started = Instant::now();
    let summary = campaign::run(&opts, &|_| {}).unwrap();
    let c = &summary.counters;
    assert!(c.add_up(), "{c:?}");
    println!(
        "emulator (full 7.2 model): {} iterations in {:.2}s, {:.0} exec/s, {} denied, findings {:?}",
        c.iterations,
        started.elapsed().as_secs_f64(),
        summary.exec_per_sec,
        c.denied,
        summary.findings.iter().map(|f| (&f.signature, f.count)).collect::<Vec<_>>()
    );
    let report = std::fs::read_to_string(&summary.report_md).unwrap();
    assert!(report.contains("## Safety rules in force"));
    assert!(report.contains("**hmp**"), "the deny rules table is printed");
}

#[test]
fn live_qemu_short_campaign_counters_add_up() {
    let Some(binary) = support::qemu_binary("qemu-system-x86_64") else { return };
    let out = tempfile::tempdir().unwrap();
    let mut opts = FuzzOptions::new(FuzzTarget::Qemu(Target::new(Binary::SystemX86, &binary)), out.path());
    opts.iterations = Some(300);
    opts.seed = 1;
    // Regression: seed 1 draws pmemsave size 2^63-1 at iteration 155, which wrote into the
    // scratch dir until the disk filled; the `dump-size` rule now refuses it.
    // A 1 MiB string takes QEMU about 5 s to parse; keep the test short.
    opts.exclude_mutators = vec!["huge-string".into()];
    let summary = campaign::run(&opts, &|_| {}).unwrap();
    let c = &summary.counters;
    println!(
        "qemu 7.2: {} iterations in {:.2}s, {:.0} exec/s; {:?}; findings {:#?}",
        c.iterations, summary.duration_secs, summary.exec_per_sec, c, summary.findings
    );
    assert!(c.add_up(), "{c:?}");
    assert_eq!(c.iterations, 300);
    assert_eq!(c.executed + c.denied, 300);
    assert_eq!(c.per_mutator.get("huge-string"), None);
    assert_eq!(c.restarts, c.deaths + c.hangs);
    assert!(summary.version.starts_with("7.2."), "{}", summary.version);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary.report_json).unwrap()).unwrap();
    assert_eq!(json["counters"]["iterations"], 300);
    for f in &summary.findings {
        assert!(f.reproducer.is_file(), "{}", f.reproducer.display());
    }
}

#[test]
fn shards_fuzz_disjoint_command_sets() {
    let mut seen = Vec::new();
    for k in 1..=2u32 {
        let out = tempfile::tempdir().unwrap();
        let target = FuzzTarget::Emulator { model: small_model(), config: EmulatorConfig::default() };
        let mut opts = options(target, out.path(), 60);
        opts.shard = Some(format!("{k}/2").parse().unwrap());
        let summary = campaign::run(&opts, &|_| {}).unwrap();
        assert_eq!(summary.shard.as_deref(), Some(format!("{k}/2").as_str()));
        let log = std::fs::read_to_string(out.path().join("cases.log")).unwrap();
        let mut commands: Vec<String> = log
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["command"].as_str().unwrap().to_string()
            })
            .collect();
        commands.sort();
        commands.dedup();
        seen.push(commands);
    }
    assert!(!seen[0].is_empty() && !seen[1].is_empty(), "{seen:?}");
    assert!(seen[0].iter().all(|c| !seen[1].contains(c)), "{seen:?}");
    let mut all: Vec<&String> = seen.iter().flatten().collect();
    all.sort();
    assert_eq!(all.len(), 6, "the two shards cover the 6 commands: {seen:?}");
}
