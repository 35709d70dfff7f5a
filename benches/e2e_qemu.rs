//! End to end against real QEMU 7.2: commands/s of `query-status` in lockstep through
//! qmpcheck's client (`wire::Client` via `target::qemu::Qemu::launch`), through a minimal
//! blocking client (the floor: write the request, read one line), through the minimal client
//! plus `check::fast` on every reply, and through QEMU's own Python client qemu.qmp 0.0.6
//! (when `QMPCHECK_PYTHON` names a Python that has it; benches/e2e/run.sh sets that up), all
//! on one QEMU process, in interleaved rounds; then QEMU's start-up time per launch (spawn to
//! socket, and to the greeting). Prints a Markdown table for reports/perf.md.
//!
//! `cargo bench --bench e2e_qemu -- --bench` (or benches/e2e/run.sh) measures; without
//! `--bench` (as `cargo test --all-targets` runs it) it does a short smoke run. With no QEMU
//! it skips with a note, and fails when `CI=true`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use qmpcheck::check::fast::{FastValidator, MessageKind};
use qmpcheck::target::qemu::{Binary, Qemu, Target};
use qmpcheck::wire::Message;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const REQUEST: &[u8] = b"{\"execute\": \"query-status\"}\r\n";

/// How much to measure.
struct Plan {
    commands: usize,
    rounds: usize,
    launches: usize,
}

impl Plan {
    fn from_env(bench: bool) -> Plan {
        let var = |name: &str, default: usize| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
        };
        if bench {
            Plan {
                commands: var("QMPCHECK_E2E_COMMANDS", 5000),
                rounds: var("QMPCHECK_E2E_ROUNDS", 5),
                launches: var("QMPCHECK_E2E_LAUNCHES", 10),
            }
        } else {
            Plan { commands: 200, rounds: 1, launches: 2 }
        }
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let Some(qemu_path) = qemu_binary() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true and no QEMU at {QEMU}");
        println!("e2e_qemu: no QEMU at {QEMU}; skipped");
        return;
    };
    let plan = Plan::from_env(bench);
    let target = Target::new(Binary::SystemX86, &qemu_path);
    let qemu = Qemu::launch(&target).expect("QEMU 7.2 starts");
    let validator = FastValidator::new(&qmpcheck::source::builtin());
    let python = std::env::var("QMPCHECK_PYTHON").ok().filter(|p| !p.is_empty());

    let mut rows: Vec<Row> =
        ROWS.iter().map(|(name, _)| Row { name, rates: Vec::new(), cpu: Vec::new() }).collect();
    for _ in 0..plan.rounds {
        for (row, (_, client)) in rows.iter_mut().zip(ROWS.iter()) {
            let cpu_before = thread_cpu_ns();
            let rate = match client {
                Client::Execute => our_client(&qemu, plan.commands),
                Client::NoId => our_client_no_id(&qemu, plan.commands),
                Client::Minimal => minimal_client(qemu.socket(), plan.commands, Request::Plain, None),
                Client::MinimalId => minimal_client(qemu.socket(), plan.commands, Request::WithId, None),
                Client::MinimalFast => {
                    minimal_client(qemu.socket(), plan.commands, Request::Plain, Some(&validator))
                }
                Client::Python | Client::PythonLegacy => match &python {
                    Some(python) => {
                        qemu_qmp(python, qemu.socket(), plan.commands, *client == Client::PythonLegacy)
                    }
                    None => continue,
                },
            };
            let cpu = thread_cpu_ns().saturating_sub(cpu_before) as f64 / 1e3 / plan.commands as f64;
            row.rates.push(rate);
            if !matches!(client, Client::Python | Client::PythonLegacy) {
                row.cpu.push(cpu);
            }
        }
    }
    drop(qemu);
    let (to_socket, to_greeting) = startup(&target, plan.launches);

    println!("\n## End to end, QEMU 7.2 ({}), query-status lockstep", qemu_path.display());
    println!("{} rounds x {} commands per client, one QEMU process\n", plan.rounds, plan.commands);
    println!("| client | request | median cmd/s | min | max | client CPU µs/cmd |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in rows.iter().filter(|r| !r.rates.is_empty()) {
        let cpu = if row.cpu.is_empty() { "-".to_string() } else { format!("{:.1}", median(&row.cpu)) };
        let (name, request) = row.name;
        let (rates, lo, hi) = (median(&row.rates), min(&row.rates), max(&row.rates));
        println!("| {name} | {request} | {rates:.0} | {lo:.0} | {hi:.0} | {cpu} |");
    }
    let rate_of = |client: Client| {
        ROWS.iter()
            .position(|(_, c)| *c == client)
            .and_then(|i| rows.get(i))
            .map_or(f64::NAN, |r| median(&r.rates))
    };
    let (execute, no_id) = (rate_of(Client::Execute), rate_of(Client::NoId));
    println!(
        "\nminimal / Client::execute, same request (id) = {:.3} (target <= 1.1)",
        rate_of(Client::MinimalId) / execute
    );
    println!("minimal / Client::execute, minimal without id = {:.3}", rate_of(Client::Minimal) / execute);
    println!("minimal / Client without id = {:.3}", rate_of(Client::Minimal) / no_id);
    if python.is_some() {
        for (label, py) in [("async", rate_of(Client::Python)), ("legacy", rate_of(Client::PythonLegacy))] {
            println!("Client::execute / qemu.qmp {label} = {:.2} (target >= 3)", execute / py);
            println!("Client without id / qemu.qmp {label} = {:.2}", no_id / py);
        }
    }
    println!("\n| QEMU start-up ({} launches) | median ms | min | max |", plan.launches);
    println!("|---|---:|---:|---:|");
    for (name, times) in [("spawn to QMP socket", &to_socket), ("spawn to greeting read", &to_greeting)] {
        println!("| {name} | {:.1} | {:.1} | {:.1} |", median(times), min(times), max(times));
    }
}

/// The clients measured, in the order of each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Execute,
    NoId,
    Minimal,
    MinimalId,
    MinimalFast,
    Python,
    PythonLegacy,
}

/// Name and request shape of each client, as the table shows them.
const ROWS: [((&str, &str), Client); 7] = [
    (("qmpcheck wire::Client::execute", "with string id"), Client::Execute),
    (("qmpcheck wire::Client send_raw + read_message", "no id"), Client::NoId),
    (("minimal blocking client (floor)", "no id"), Client::Minimal),
    (("minimal blocking client", "with string id"), Client::MinimalId),
    (("minimal client + check::fast per reply", "no id"), Client::MinimalFast),
    (("qemu.qmp 0.0.6 QMPClient.execute (Python, async)", "with id"), Client::Python),
    (("qemu.qmp 0.0.6 legacy QEMUMonitorProtocol.cmd (Python)", "with id"), Client::PythonLegacy),
];

struct Row {
    name: &'static (&'static str, &'static str),
    rates: Vec<f64>,
    /// CPU time of this thread per command, in µs (the client's own cost).
    cpu: Vec<f64>,
}

/// The request bytes of the minimal client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Plain,
    /// As `wire::Client::execute` sends it: compact, with a string id.
    WithId,
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`; 0 if unreadable).
fn thread_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    text.split_whitespace().next().and_then(|t| t.parse().ok()).unwrap_or(0)
}

fn qemu_binary() -> Option<PathBuf> {
    let path = std::env::var("QEMU").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(QEMU));
    path.exists().then_some(path)
}

/// qmpcheck's client: connect (greeting), negotiate, then `count` lockstep commands.
fn our_client(qemu: &Qemu, count: usize) -> f64 {
    let mut client = qemu.connect().expect("connect");
    client.negotiate(&[]).expect("qmp_capabilities");
    let started = Instant::now();
    for _ in 0..count {
        let reply = client.execute("query-status", None).expect("query-status");
        assert!(reply.is_return(), "query-status failed: {reply:?}");
    }
    rate(count, started.elapsed())
}

/// qmpcheck's client without ids: the request written as is, the next message read (in
/// lockstep without OOB, replies come in order, rule C6).
fn our_client_no_id(qemu: &Qemu, count: usize) -> f64 {
    let mut client = qemu.connect().expect("connect");
    client.negotiate(&[]).expect("qmp_capabilities");
    let started = Instant::now();
    for _ in 0..count {
        client.send_raw(REQUEST).expect("send");
        let incoming = client.read_message().expect("reply");
        assert!(matches!(&incoming.message, Message::Reply(r) if r.is_return()), "{incoming:?}");
    }
    rate(count, started.elapsed())
}

/// The floor: write the request, read one line; with `validator`, also check each reply.
fn minimal_client(socket: &Path, count: usize, request: Request, validator: Option<&FastValidator>) -> f64 {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reader = BufReader::with_capacity(64 << 10, stream.try_clone().expect("clone"));
    let mut line = Vec::with_capacity(4096);
    reader.read_until(b'\n', &mut line).expect("greeting");
    stream.write_all(b"{\"execute\": \"qmp_capabilities\"}\r\n").expect("write");
    line.clear();
    reader.read_until(b'\n', &mut line).expect("capabilities reply");
    let started = Instant::now();
    let mut bytes = Vec::with_capacity(64);
    for i in 0..count {
        bytes.clear();
        match request {
            Request::Plain => bytes.extend_from_slice(REQUEST),
            Request::WithId => {
                let _ = write!(bytes, "{{\"execute\":\"query-status\",\"id\":\"qmpcheck-{i}\"}}\r\n");
            }
        }
        stream.write_all(&bytes).expect("write");
        line.clear();
        reader.read_until(b'\n', &mut line).expect("reply");
        if let Some(validator) = validator {
            let kind = validator.check_message(Some("query-status"), line.trim_ascii_end());
            assert_eq!(kind, Ok(MessageKind::Return), "{}", String::from_utf8_lossy(&line));
        }
    }
    assert!(line.starts_with(b"{\"return\""), "{}", String::from_utf8_lossy(&line));
    rate(count, started.elapsed())
}

/// QEMU's Python client, in a child process (benches/e2e/qmp_lockstep.py).
fn qemu_qmp(python: &str, socket: &Path, count: usize, legacy: bool) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/e2e/qmp_lockstep.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(socket)
        .arg(count.to_string())
        .arg("1")
        .arg(if legacy { "legacy" } else { "async" })
        .output()
        .expect("run qmp_lockstep.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|l| l.starts_with("qemu.qmp")).unwrap_or_else(|| {
        panic!("qmp_lockstep.py printed no rate: {stdout} {}", String::from_utf8_lossy(&output.stderr))
    });
    line.rsplit(' ').next().and_then(|r| r.parse().ok()).expect("a rate")
}

/// Milliseconds from spawn to the socket, and to a read greeting, per launch.
fn startup(target: &Target, launches: usize) -> (Vec<f64>, Vec<f64>) {
    let mut to_socket = Vec::new();
    let mut to_greeting = Vec::new();
    for _ in 0..launches {
        let started = Instant::now();
        let qemu = Qemu::launch(target).expect("QEMU starts");
        to_socket.push(started.elapsed().as_secs_f64() * 1e3);
        let client = qemu.connect().expect("greeting");
        to_greeting.push(started.elapsed().as_secs_f64() * 1e3);
        drop(client);
        drop(qemu);
    }
    (to_socket, to_greeting)
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}
