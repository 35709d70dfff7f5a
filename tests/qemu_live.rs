//! Real QEMU 7.2: launch in the sandbox, greeting, introspection into the model, cleanup.
//! Skipped (with a note) when QEMU is missing, failed when CI=true and QEMU is missing.

mod support;

use std::time::{Duration, Instant};

use qmpcheck::spec::{introspect, Spec, TypeKind, TypeRef};
use qmpcheck::target::qemu::{self, Binary, Exit, Qemu, Target};
use qmpcheck::target::record;
use qmpcheck::wire::Reply;
use serde_json::Value;

/// Every type reference in the model that is `TypeRef::Unknown`, with its owner.
fn unknown_refs(spec: &Spec) -> Vec<String> {
    fn walk(owner: &str, t: &TypeRef, out: &mut Vec<String>) {
        match t {
            TypeRef::Unknown(text) => out.push(format!("{owner}: {text}")),
            TypeRef::Array(e) => walk(owner, e, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for c in spec.commands.values() {
        for t in c.args.iter().chain(c.returns.iter()) {
            walk(&c.name, t, &mut out);
        }
    }
    for e in spec.events.values() {
        for t in e.data.iter() {
            walk(&e.name, t, &mut out);
        }
    }
    for d in spec.types.values() {
        match &d.kind {
            TypeKind::Struct { members, .. } => members.iter().for_each(|m| walk(&d.name, &m.ty, &mut out)),
            TypeKind::Union { members, variants, .. } => {
                members.iter().for_each(|m| walk(&d.name, &m.ty, &mut out));
                variants.iter().for_each(|v| walk(&d.name, &v.ty, &mut out));
            }
            TypeKind::Alternate { alternatives } => {
                alternatives.iter().for_each(|a| walk(&d.name, &a.ty, &mut out))
            }
            TypeKind::Array { element } => walk(&d.name, element, &mut out),
            TypeKind::Builtin { .. } | TypeKind::Enum { .. } => {}
        }
    }
    out
}

fn names<'a>(items: impl Iterator<Item = (&'a String, bool)>) -> Vec<&'a str> {
    items.filter(|(_, yes)| *yes).map(|(n, _)| n.as_str()).collect()
}

fn model_of(kind: Binary, path: &std::path::Path) -> Spec {
    let schema = qemu::introspect(kind, path).expect("introspect");
    let label = format!("qemu:{}", path.display());
    introspect::parse(&schema.to_string(), &label)
}

#[test]
fn system_emulator_greets_as_7_2_in_the_sandbox_and_dies_on_drop() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let started = Instant::now();
    let qemu = Qemu::launch(&Target::new(Binary::SystemX86, &path)).expect("launch");
    let mut client = qemu.connect().expect("connect");
    let to_greeting = started.elapsed();
    let version = client.greeting().map(|g| g.version.qemu).expect("greeting");
    assert_eq!((version.major, version.minor), (7, 2));
    println!("start to greeting: {to_greeting:?} (QEMU {version})");

    let line = qemu.command_line().join(" ");
    assert!(line.contains(" -sandbox on,"), "{line}");
    for refused in ["-netdev", "-nic", "-net "] {
        assert!(!line.contains(refused), "{line}");
    }
    assert_eq!(qemu.socket().parent(), Some(qemu.scratch_dir()));

    assert!(client.negotiate(&[]).expect("negotiate").is_return());
    let reply = client.execute("query-status", None).expect("query-status");
    let Reply::Return { value, .. } = reply else { panic!("query-status failed: {reply:?}") };
    assert_eq!(value["status"], "prelaunch");

    let pid = qemu.pid();
    let scratch = qemu.scratch_dir().to_path_buf();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(client);
    drop(qemu);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still there after drop");
    assert!(!scratch.exists(), "scratch dir {} left behind", scratch.display());
}

#[test]
fn system_emulator_introspection_gives_the_documented_counts() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let spec = model_of(Binary::SystemX86, &path);
    assert_eq!((spec.commands.len(), spec.events.len()), (216, 52));
    assert_eq!(spec.unresolved(), Vec::new());
    assert_eq!(unknown_refs(&spec), Vec::<String>::new());
    assert_eq!(spec.diagnostics, Vec::new());
    // 553 objects = structs + unions; arrays and builtins become TypeRef::Array / Builtin.
    let counts = spec.type_counts();
    assert_eq!(counts.get("struct").copied().unwrap_or(0) + counts.get("union").copied().unwrap_or(0), 553);
    assert_eq!((counts.get("enum"), counts.get("alternate")), (Some(&132), Some(&6)));
    let deprecated_commands = names(spec.commands.iter().map(|(n, c)| (n, c.is_deprecated())));
    assert_eq!(deprecated_commands, vec!["drive-backup", "nbd-server-add", "nbd-server-remove"]);
    let deprecated_events =
        names(spec.events.iter().map(|(n, e)| (n, e.features.iter().any(|f| f == "deprecated"))));
    assert_eq!(deprecated_events, vec!["MEM_UNPLUG_ERROR"]);
    let unstable = spec.commands.values().filter(|c| c.is_unstable()).count();
    assert_eq!(unstable, 21);
    // arg-type "0" is the empty object: commands without arguments have args None.
    assert!(matches!(&spec.types["0"].kind, TypeKind::Struct { members, .. } if members.is_empty()));
    assert_eq!(spec.commands["query-status"].args, None);
    assert_eq!(spec.commands["stop"].returns, None);
    let oob = names(spec.commands.iter().map(|(n, c)| (n, c.allow_oob)));
    assert_eq!(oob, vec!["migrate-pause", "migrate-recover", "query-yank", "yank"]);
    let eject = &spec.commands["eject"];
    let args: Vec<(&str, bool)> =
        spec.command_args(eject).iter().map(|m| (m.name.as_str(), m.optional)).collect();
    assert_eq!(args, vec![("device", true), ("id", true), ("force", true)]);
}

#[test]
fn storage_daemon_introspection_resolves_fully() {
    let Some(path) = support::qemu_binary("qemu-storage-daemon") else { return };
    let spec = model_of(Binary::StorageDaemon, &path);
    println!(
        "qemu-storage-daemon: {} commands, {} events, types {:?}",
        spec.commands.len(),
        spec.events.len(),
        spec.type_counts()
    );
    assert_eq!((spec.commands.len(), spec.events.len()), (STORAGE_DAEMON_COMMANDS, STORAGE_DAEMON_EVENTS));
    assert_eq!(spec.unresolved(), Vec::new());
    assert_eq!(unknown_refs(&spec), Vec::<String>::new());
    assert_eq!(spec.diagnostics, Vec::new());
    let deprecated = names(spec.commands.iter().map(|(n, c)| (n, c.is_deprecated())));
    assert_eq!(deprecated, vec!["drive-backup", "nbd-server-add", "nbd-server-remove"]);
    assert!(!spec.commands.contains_key("query-status"));
    // 289 objects (269 structs + 20 unions), 68 enums, 5 alternates in its reply.
    let counts: Vec<(&str, usize)> = spec.type_counts().into_iter().collect();
    assert_eq!(counts, vec![("alternate", 5), ("enum", 68), ("struct", 269), ("union", 20)]);
}

/// Counted from qemu-storage-daemon 7.2's `query-qmp-schema` reply on this machine.
const STORAGE_DAEMON_COMMANDS: usize = 74;
/// See [`STORAGE_DAEMON_COMMANDS`].
const STORAGE_DAEMON_EVENTS: usize = 13;

#[test]
fn record_transcript_parses_like_the_live_reply() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let transcript = record::record(Binary::SystemX86, &path).expect("record");
    let keys: Vec<&str> =
        transcript.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(
        keys,
        vec!["greeting", "query-version", "query-qmp-schema", "query-commands", "query-events", "target"]
    );
    assert_eq!(transcript["query-version"]["qemu"]["major"], 7);
    assert_eq!(transcript["query-commands"].as_array().map(Vec::len), Some(216));
    let pretty = serde_json::to_string_pretty(&transcript).expect("print");
    let spec = introspect::parse(&pretty, "rec.json");
    assert_eq!((spec.commands.len(), spec.events.len(), spec.diagnostics.len()), (216, 52, 0));
    // Pretty-printed: each entry's source is the line where it starts.
    let line = spec.commands["query-status"].sources[0].line as usize;
    let text_line = pretty.lines().nth(line - 1).unwrap_or("");
    let next = pretty.lines().nth(line).unwrap_or("");
    assert_eq!((text_line.trim(), next.trim()), ("{", "\"name\": \"query-status\","));
}

#[test]
fn kill_reports_the_signal() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let mut qemu = Qemu::launch(&Target::new(Binary::SystemX86, &path)).expect("launch");
    assert_eq!(qemu.try_exit().expect("try_exit"), None);
    qemu.kill(nix::sys::signal::Signal::SIGABRT).expect("kill");
    let exit = qemu.wait_exit(Duration::from_secs(10)).expect("wait");
    let Some(Exit::Signal { signal, .. }) = exit else { panic!("not killed by a signal: {exit:?}") };
    assert_eq!(signal, nix::sys::signal::Signal::SIGABRT as i32);
}

#[test]
fn start_up_failure_reports_stderr() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let mut target = Target::new(Binary::SystemX86, &path);
    target.extra_args = vec!["-no-such-option".into()];
    let err = Qemu::launch(&target).expect_err("must fail");
    let text = err.to_string();
    assert!(text.contains("exit code 1") && text.contains("-no-such-option"), "{text}");
    target.extra_args = vec!["-netdev".into(), "user,id=n".into()];
    let err = Qemu::launch(&target).expect_err("refused");
    assert!(matches!(err, qemu::TargetError::Refused { ref arg } if arg == "-netdev"), "{err}");
}

/// A quick measurement, not a check: lockstep query-status rate and query-qmp-schema size/time.
#[test]
fn measure_throughput() {
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let qemu = Qemu::launch(&Target::new(Binary::SystemX86, &path)).expect("launch");
    let mut client = qemu.connect().expect("connect");
    client.negotiate(&[]).expect("negotiate");
    let before = client.bytes_received();
    let started = Instant::now();
    let schema = client.execute("query-qmp-schema", None).expect("schema");
    let schema_time = started.elapsed();
    let size = client.bytes_received() - before;
    assert!(matches!(schema, Reply::Return { value: Value::Array(_), .. }));
    let n = 2000;
    let started = Instant::now();
    for _ in 0..n {
        client.execute("query-status", None).expect("query-status");
    }
    let rate = f64::from(n) / started.elapsed().as_secs_f64();
    println!("query-qmp-schema: {size} bytes in {schema_time:?}; query-status lockstep: {rate:.0}/s");
}

/// Regression: `launch` returned once the socket file existed, before QEMU listened, so an
/// immediate connect could get ECONNREFUSED. Launch, then connect at once, 50 times.
#[test]
fn launch_then_immediate_connect_always_succeeds() {
    use std::io::Read;
    let Some(path) = support::qemu_binary("qemu-system-x86_64") else { return };
    let started = Instant::now();
    for round in 0..50 {
        let qemu = Qemu::launch(&Target::new(Binary::SystemX86, &path)).expect("launch");
        let stream = std::os::unix::net::UnixStream::connect(qemu.socket())
            .unwrap_or_else(|e| panic!("round {round}: connect right after launch: {e}"));
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut first = [0u8; 8];
        (&stream).read_exact(&mut first).unwrap_or_else(|e| panic!("round {round}: greeting: {e}"));
        assert_eq!(&first, b"{\"QMP\": ", "round {round}");
    }
    let took = started.elapsed();
    println!("50 launches with a connect each: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// A program that binds the socket but never listens: launch retries ECONNREFUSED until the
/// start timeout, then reports the last error and the program's stderr.
#[test]
fn start_timeout_reports_the_refused_connect_and_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("fake-qemu");
    let python = "import socket, time; s = socket.socket(socket.AF_UNIX); s.bind('qmp.sock'); time.sleep(30)";
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho 'fake qemu: bound, not listening' >&2\nexec python3 -c \"{python}\"\n"),
    )
    .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let mut target = Target::new(Binary::StorageDaemon, &fake);
    target.start_timeout = Duration::from_millis(700);
    let started = Instant::now();
    let err = Qemu::launch(&target).expect_err("never listens");
    let waited = started.elapsed();
    let qemu::TargetError::StartTimeout { last, stderr, .. } = &err else { panic!("not a timeout: {err}") };
    assert_eq!(last, "connect: Connection refused (os error 111)", "{err}");
    assert_eq!(stderr, "fake qemu: bound, not listening\n");
    assert!(waited >= Duration::from_millis(700) && waited < Duration::from_secs(3), "{waited:?}");
}
