//! The command-line front end. **Only this module knows clap and exit codes**: it parses
//! flags, calls the library and maps results to 0 (clean), 1 (findings), 2 (usage or
//! infrastructure error).

use std::process::ExitCode;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check::examples::check_examples_report;
use crate::check::schema::{SchemaOptions, SchemaSet};
use crate::compat;
use crate::conform::{
    self, CaseResult, ConformError, ConformOptions, ConformRun, Outcome, Shard, TargetSpec,
};
use crate::fuzz::campaign::{self as fuzz_campaign, FuzzOptions};
use crate::fuzz::minimize::{minimize, replay, ReplayOptions};
use crate::fuzz::FuzzTarget;
use crate::report;
use crate::source::{self, Loader};
use crate::spec::{self, DiagnosticKind, SourceKind, Spec};
use crate::target::emulator::{serve, EmulatorConfig, Fault};
use crate::target::record::record;
use crate::target::{Binary, Target};

/// Conformance, fuzz and compatibility testing for QMP.
#[derive(Debug, Parser)]
#[command(name = "qmpcheck", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of `spec`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SpecFormat {
    /// One line per command and event.
    Table,
    /// The JSON document described in design.md.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the model from SOURCEs and print it.
    Spec {
        /// Files, folders, `PATH@old`/`PATH@new` sides of an .hx diff, `qemu:BINARY`,
        /// `storage-daemon:BINARY` or `builtin`.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Override content detection of the document kind.
        #[arg(long, value_enum)]
        kind: Option<SourceKind>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: SpecFormat,
        /// Print only the drift between sources (what they disagree on).
        #[arg(long)]
        drift: bool,
        /// A SOURCE that names the headless prose pieces of `.hx` diffs (hunks that cut off
        /// their section's heading), by matching member names against its commands.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Write one JSON Schema (draft 2020-12) per command's arguments, per return type and per
    /// event, and check the documentation's own examples against them.
    Schema {
        /// As for `spec`.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Override content detection of the document kind.
        #[arg(long, value_enum)]
        kind: Option<SourceKind>,
        /// Folder to write the schemas into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Also forbid members the model does not list in returns and event data.
        #[arg(long)]
        strict: bool,
    },
    /// Say what a client written against OLD must change for NEW, rule by rule (K1-K8).
    Compat {
        /// The old side: any SOURCE (file, `PATH@old`, folder, `qemu:BINARY`, recording).
        old: String,
        /// The new side.
        new: String,
        /// Override content detection of the document kind (both sides).
        #[arg(long, value_enum)]
        kind: Option<SourceKind>,
        /// Report format.
        #[arg(long, value_enum, default_value = "md")]
        format: compat::render::Format,
        /// Which changes make the exit code 1.
        #[arg(long, value_enum, default_value = "breaking")]
        fail_on: compat::FailOn,
        /// A SOURCE that names the headless prose pieces of `.hx` diffs (see `spec`).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Run the conformance cases and one generated check per command against a target, and
    /// report findings (exit 1 when any check fails).
    Conform {
        /// `emulated`, `qemu:BINARY` or `storage-daemon:BINARY`. Default: real QEMU when
        /// `qemu-system-x86_64` is on PATH, else the emulator with the builtin model.
        #[arg(long)]
        target: Option<String>,
        /// Write a JUnit XML file here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write report.md, results.json and junit.xml into this folder.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Run only shard K of N (e.g. `1/2`); `report merge` joins the shards' results.json.
        #[arg(long)]
        shard: Option<Shard>,
        /// Also reject reply members the model does not list.
        #[arg(long)]
        strict: bool,
        /// Read the cases from this folder instead of the built-in ones.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Longest wait for one reply, in seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// Throw generated and mutated commands at a target; every finding is saved (fsynced)
    /// under OUT/findings/SIGNATURE/ before the target is restarted.
    Fuzz {
        /// `emulated`, `qemu:BINARY` or `storage-daemon:BINARY` (default as for `conform`).
        #[arg(long)]
        target: Option<String>,
        /// Stop after this long (`90s`, `10m`, `2h`). Default 60s when --iterations is absent.
        #[arg(long, value_parser = parse_duration)]
        time: Option<Duration>,
        /// Stop after this many iterations (resumed runs included).
        #[arg(long)]
        iterations: Option<u64>,
        /// The seed of every generated choice.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output folder: findings/, report.md, report.json, state.json, cases.log.
        #[arg(long, default_value = "qmpcheck-fuzz")]
        out: PathBuf,
        /// Fuzz only shard K of N of the command set.
        #[arg(long)]
        shard: Option<Shard>,
        /// Continue the campaign saved in OUT/state.json.
        #[arg(long)]
        resume: bool,
        /// Also fuzz x-*, unstable and deprecated commands (the separate campaign).
        #[arg(long)]
        unstable: bool,
        /// Mutators not to use, by name (e.g. `huge-string`).
        #[arg(long = "exclude-mutator")]
        exclude_mutators: Vec<String>,
        /// With `--target emulated`: inject a fault (`die@stop`, `hang:50`, `garbage:0.01`).
        #[arg(long)]
        fault: Option<String>,
        /// Seconds a reply may take before the case is a hang.
        #[arg(long, default_value_t = 2)]
        reply_timeout: u64,
    },
    /// Re-run a finding's reproducer on a fresh target; exit 1 when it reproduces.
    Replay {
        /// A folder under OUT/findings/.
        finding: PathBuf,
    },
    /// Reduce a finding's reproducer (commands, then argument JSON) while it still reproduces.
    Minimize {
        /// A folder under OUT/findings/.
        finding: PathBuf,
    },
    /// Work with conformance results.
    Report {
        /// What to do.
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Serve the emulator (a QMP server derived from the model) on a UNIX socket until killed.
    Emulate {
        /// The socket path to listen on.
        #[arg(long)]
        socket: PathBuf,
        /// The model to serve (any SOURCE); the embedded QEMU 7.2 model by default.
        #[arg(long, default_value = "builtin")]
        model: String,
        /// Inject a fault: `hang`, `die` or `garbage:RATE`, optionally `@COMMAND` (e.g.
        /// `die@query-status`) to fire on that command only.
        #[arg(long)]
        fault: Option<String>,
        /// Seed of the fault's deterministic choices.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Launch real QEMU and save its greeting, query-version, query-qmp-schema,
    /// query-commands and query-events replies as a transcript (a SOURCE for `spec`).
    Record {
        /// `qemu:BINARY` or `storage-daemon:BINARY`.
        #[arg(long)]
        target: String,
        /// The transcript file to write (pretty-printed JSON).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `qmpcheck report` actions.
#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Join the results.json of sharded runs into one report (report.md, results.json, junit.xml).
    Merge {
        /// results.json files (or folders holding one).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Folder to write the merged reports into.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Parses the process arguments, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    restore_sigpipe();
    init_tracing();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("qmpcheck: error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Lets `qmpcheck ... | head` end quietly, as Unix tools do, instead of panicking on a
/// closed stdout.
fn restore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: resetting a signal to its default disposition before any thread starts.
    #[allow(unsafe_code)]
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QMPCHECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Runs a parsed command line. `Err` carries a message for exit code 2.
pub fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Spec { sources, kind, format, drift, reference } => {
            run_spec(&loader(kind, reference.as_deref())?, &sources, format, drift)
        }
        Command::Schema { sources, kind, out, strict } => {
            run_schema(&loader(kind, None)?, &sources, &out, strict)
        }
        Command::Record { target, out } => run_record(&target, &out),
        Command::Conform { target, junit, report, shard, strict, cases, timeout } => {
            let opts =
                ConformArgs { junit, report, shard, strict, cases, timeout: Duration::from_secs(timeout) };
            run_conform(target.as_deref(), &opts)
        }
        Command::Fuzz {
            target,
            time,
            iterations,
            seed,
            out,
            shard,
            resume,
            unstable,
            exclude_mutators,
            fault,
            reply_timeout,
        } => {
            let target = fuzz_target(target.as_deref(), fault.as_deref())?;
            // The emulator's own query-qmp-schema reply is a minimal value, not its model.
            let model = match &target {
                FuzzTarget::Emulator { model, .. } => Some(model.clone()),
                FuzzTarget::Qemu(_) => None,
            };
            let mut opts = FuzzOptions::new(target, out);
            opts.model = model;
            opts.iterations = iterations;
            opts.time = time.or(if iterations.is_none() { Some(Duration::from_secs(60)) } else { None });
            opts.seed = seed;
            opts.shard = shard;
            opts.resume = resume;
            opts.unstable_campaign = unstable;
            opts.exclude_mutators = exclude_mutators;
            opts.reply_timeout = Duration::from_secs(reply_timeout);
            run_fuzz(&opts)
        }
        Command::Replay { finding } => run_replay(&finding),
        Command::Minimize { finding } => run_minimize(&finding),
        Command::Report { action: ReportAction::Merge { inputs, out } } => run_report_merge(&inputs, &out),
        Command::Emulate { socket, model, fault, seed } => {
            run_emulate(&socket, &model, fault.as_deref(), seed)
        }
        Command::Compat { old, new, kind, format, fail_on, reference } => {
            run_compat(&loader(kind, reference.as_deref())?, &old, &new, format, fail_on)
        }
    }
}

/// A loader with the kind override and the `--reference` model, if any.
fn loader(kind: Option<SourceKind>, reference: Option<&str>) -> Result<Loader, String> {
    let reference = match reference {
        Some(arg) => Some(source::load(arg, None).map_err(|e| format!("--reference {e}"))?),
        None => None,
    };
    Ok(Loader { kind, reference })
}

/// Loads and merges every SOURCE into one model.
fn load_all(loader: &Loader, sources: &[String]) -> Result<Spec, String> {
    let mut specs = Vec::new();
    for s in sources {
        specs.push(loader.load(s).map_err(|e| e.to_string())?);
    }
    Ok(spec::merge::merge(specs))
}

fn run_spec(
    loader: &Loader,
    sources: &[String],
    format: SpecFormat,
    drift: bool,
) -> Result<ExitCode, String> {
    let model = load_all(loader, sources)?;
    if drift {
        let drifts: Vec<_> = model.diagnostics.iter().filter(|d| d.kind == DiagnosticKind::Drift).collect();
        match format {
            SpecFormat::Json => {
                let v: Vec<_> = drifts
                    .iter()
                    .map(|d| serde_json::json!({"source": d.source.to_string(), "message": d.message}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
            }
            SpecFormat::Table => {
                for d in &drifts {
                    println!("{d}");
                }
                println!("{} drift findings", drifts.len());
            }
        }
        return Ok(if drifts.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    match format {
        SpecFormat::Json => {
            let v = spec::render::to_json(&model);
            println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
        }
        SpecFormat::Table => {
            print!("{}", spec::render::to_table(&model));
            for d in &model.diagnostics {
                eprintln!("{:?}: {d}", d.kind);
            }
        }
    }
    // A source whose syntax could not be read is a usage error, even though the model of
    // what could be read was printed above.
    let syntax: Vec<_> = model.diagnostics.iter().filter(|d| d.kind == DiagnosticKind::Syntax).collect();
    if let Some(first) = syntax.first() {
        return Err(format!("{} syntax error(s) in the sources; first: {first}", syntax.len()));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_schema(loader: &Loader, sources: &[String], out: &Path, strict: bool) -> Result<ExitCode, String> {
    let model = load_all(loader, sources)?;
    let set = SchemaSet::build(&model, SchemaOptions { strict });
    let written = set.write_all(out).map_err(|e| e.to_string())?;
    let examples = check_examples_report(&model, &set);
    for d in &examples.diagnostics {
        println!("doc finding: {d}");
    }
    println!(
        "{written} schemas written to {}; {} doc examples checked: {} passed, {} failed, {} skipped",
        out.display(),
        examples.checked,
        examples.passed,
        examples.failed(),
        examples.skipped
    );
    Ok(ExitCode::SUCCESS)
}

/// Parses `qemu:BINARY` / `storage-daemon:BINARY`.
fn parse_binary_target(arg: &str) -> Result<(Binary, PathBuf), String> {
    if let Some(path) = arg.strip_prefix("qemu:") {
        Ok((Binary::SystemX86, PathBuf::from(path)))
    } else if let Some(path) = arg.strip_prefix("storage-daemon:") {
        Ok((Binary::StorageDaemon, PathBuf::from(path)))
    } else {
        Err(format!("--target {arg}: expected qemu:BINARY or storage-daemon:BINARY"))
    }
}

fn run_record(target: &str, out: &Path) -> Result<ExitCode, String> {
    let (kind, path) = parse_binary_target(target)?;
    let transcript = record(kind, &path).map_err(|e| format!("{target}: {e}"))?;
    let mut text = serde_json::to_string_pretty(&transcript).map_err(|e| e.to_string())?;
    text.push('\n');
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    let model = spec::introspect::parse(
        &std::fs::read_to_string(out).map_err(|e| e.to_string())?,
        &out.display().to_string(),
    );
    println!(
        "recorded {target} into {}: {} commands, {} events",
        out.display(),
        model.commands.len(),
        model.events.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads one side of a comparison; a side whose syntax could not be read is an error
/// naming the first place, since a diff against half a document would mislead.
fn load_side(loader: &Loader, arg: &str) -> Result<Spec, String> {
    let model = loader.load(arg).map_err(|e| e.to_string())?;
    if let Some(first) = model.diagnostics.iter().find(|d| d.kind == DiagnosticKind::Syntax) {
        return Err(format!("{arg}: cannot compare a source that does not parse: {first}"));
    }
    Ok(model)
}

fn run_compat(
    loader: &Loader,
    old: &str,
    new: &str,
    format: compat::render::Format,
    fail_on: compat::FailOn,
) -> Result<ExitCode, String> {
    let old_model = load_side(loader, old)?;
    let new_model = load_side(loader, new)?;
    let report = compat::diff(&old_model, &new_model);
    print!("{}", compat::render::render(&report, format));
    Ok(if report.trips(fail_on) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_emulate(socket: &Path, model: &str, fault: Option<&str>, seed: u64) -> Result<ExitCode, String> {
    let model = Arc::new(source::load(model, None).map_err(|e| e.to_string())?);
    let fault = match fault {
        Some(f) => Some(f.parse::<Fault>().map_err(|e| format!("--fault {f}: {e}"))?),
        None => None,
    };
    let config = EmulatorConfig { fault, seed, ..EmulatorConfig::default() };
    let server = serve(socket, model.clone(), config).map_err(|e| format!("{}: {e}", socket.display()))?;
    eprintln!(
        "qmpcheck: emulating QMP ({} commands, {} events) on {}; stop with Ctrl-C",
        model.commands.len(),
        model.events.len(),
        socket.display()
    );
    server.wait();
    Ok(ExitCode::SUCCESS)
}

/// Flags of `conform` beyond the target.
struct ConformArgs {
    junit: Option<PathBuf>,
    report: Option<PathBuf>,
    shard: Option<Shard>,
    strict: bool,
    cases: Option<PathBuf>,
    timeout: Duration,
}

/// The target of `conform`: as given, else real QEMU when installed, else the emulator.
fn conform_target(arg: Option<&str>) -> Result<TargetSpec, String> {
    let arg = match arg {
        Some(a) => a.to_string(),
        None => match crate::target::find_binary("qemu-system-x86_64") {
            Some(path) => format!("qemu:{}", path.display()),
            None => "emulated".to_string(),
        },
    };
    if arg == "emulated" {
        return Ok(TargetSpec::Emulated {
            model: Arc::new(source::builtin()),
            config: EmulatorConfig::default(),
        });
    }
    let (kind, path) = parse_binary_target(&arg)
        .map_err(|_| format!("--target {arg}: expected emulated, qemu:BINARY or storage-daemon:BINARY"))?;
    Ok(TargetSpec::Qemu(Target::new(kind, path)))
}

fn run_conform(target: Option<&str>, args: &ConformArgs) -> Result<ExitCode, String> {
    let target = conform_target(target)?;
    let mut opts = ConformOptions::builtin().map_err(|e| e.to_string())?;
    if let Some(dir) = &args.cases {
        opts.cases = conform::case::load_dir(dir).map_err(|e| e.to_string())?;
    }
    opts.shard = args.shard;
    opts.strict = args.strict;
    opts.timeout = args.timeout;
    eprintln!(
        "qmpcheck: conform against {} ({} cases + generated command checks)",
        target.describe(),
        opts.cases.len()
    );
    let bar = progress_bar();
    let on_result = |r: &CaseResult| {
        bar.inc(1);
        if let Outcome::Fail { .. } = r.outcome {
            bar.println(format!("FAIL {} [{}] {}", r.id, r.rule, r.name));
        }
    };
    let outcome = conform::run(&target, &opts, &on_result);
    bar.finish_and_clear();
    let (run, died) = match outcome {
        Ok(run) => (run, None),
        Err(ConformError::TargetDied { reason, run }) => (*run, Some(reason)),
        Err(e) => return Err(e.to_string()),
    };
    print!("{}", summary_table(&run));
    write_conform_reports(&run, args)?;
    if let Some(reason) = died {
        return Err(format!(
            "{} died during the run ({reason}); the {} results checked before are in the reports",
            run.target.description,
            run.results.len()
        ));
    }
    Ok(if run.has_findings() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A spinner-with-count on a terminal, hidden otherwise (CI logs stay clean).
fn progress_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} checks done [{elapsed}]") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The terminal summary: counts by rule group, then each failure with its evidence.
fn summary_table(run: &ConformRun) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write;
    let mut by_group: BTreeMap<&str, conform::Counts> = BTreeMap::new();
    for r in &run.results {
        let group = if r.kind == conform::ResultKind::Command { "commands" } else { r.rule.group() };
        by_group.entry(group).or_default().add(&r.outcome);
    }
    let mut out = String::new();
    let version = run.target.version.as_deref().unwrap_or("unknown version");
    let _ = writeln!(out, "\n{} (QEMU {version})", run.target.description);
    let _ = writeln!(out, "{:<10} {:>7} {:>7} {:>7}", "group", "passed", "failed", "skipped");
    for (group, c) in &by_group {
        let _ = writeln!(out, "{group:<10} {:>7} {:>7} {:>7}", c.passed, c.failed, c.skipped);
    }
    let total = run.counts();
    let _ = writeln!(
        out,
        "{:<10} {:>7} {:>7} {:>7}   in {:.1} s",
        "total",
        total.passed,
        total.failed,
        total.skipped,
        run.wall_time.as_secs_f64()
    );
    for r in &run.results {
        if let Outcome::Fail { evidence } = &r.outcome {
            let _ = writeln!(out, "\nFAIL {} [{}] {}", r.id, r.rule, r.name);
            let _ = writeln!(out, "  sent:     {}", clip(&evidence.request));
            let _ = writeln!(out, "  got:      {}", clip(&evidence.reply));
            let _ = writeln!(out, "  expected: {}", clip(&evidence.expected));
        }
    }
    out
}

fn clip(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}... ({} bytes)", &text[..i], text.len()),
        None => text.to_string(),
    }
}

fn write_conform_reports(run: &ConformRun, args: &ConformArgs) -> Result<(), String> {
    if let Some(dir) = &args.report {
        let written = report::write_all(run, dir).map_err(|e| e.to_string())?;
        for p in written {
            eprintln!("qmpcheck: wrote {}", p.display());
        }
    }
    if let Some(path) = &args.junit {
        let xml = report::to_junit(run).map_err(|e| e.to_string())?;
        std::fs::write(path, xml).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("qmpcheck: wrote {}", path.display());
    }
    Ok(())
}

fn run_report_merge(inputs: &[PathBuf], out: &Path) -> Result<ExitCode, String> {
    let mut runs = Vec::new();
    for input in inputs {
        let path = if input.is_dir() { input.join("results.json") } else { input.clone() };
        runs.push(report::read_json_file(&path).map_err(|e| e.to_string())?);
    }
    let merged = report::merge(runs).map_err(|e| e.to_string())?;
    print!("{}", summary_table(&merged));
    report::write_all(&merged, out).map_err(|e| e.to_string())?;
    Ok(if merged.has_findings() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Parses `90s`, `10m`, `2h` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text}: expected a number followed by s, m or h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{text}: unknown unit {unit:?} (use s, m or h)")),
    };
    Ok(Duration::from_secs(secs))
}

/// The target of `fuzz`; a fault only makes sense for the emulator.
fn fuzz_target(arg: Option<&str>, fault: Option<&str>) -> Result<FuzzTarget, String> {
    match conform_target(arg)? {
        TargetSpec::Emulated { model, mut config } => {
            if let Some(f) = fault {
                config.fault = Some(f.parse::<Fault>().map_err(|e| format!("--fault {f}: {e}"))?);
            }
            Ok(FuzzTarget::Emulator { model, config })
        }
        TargetSpec::Qemu(target) => match fault {
            Some(_) => Err("--fault applies to --target emulated only".to_string()),
            None => Ok(FuzzTarget::Qemu(target)),
        },
    }
}

fn run_fuzz(opts: &FuzzOptions) -> Result<ExitCode, String> {
    eprintln!("qmpcheck: fuzzing {} into {}", opts.target.describe(), opts.out.display());
    let summary = fuzz_campaign::run(opts, &fuzz_campaign::progress_line()).map_err(|e| e.to_string())?;
    let c = &summary.counters;
    println!(
        "{} (QEMU {}): {} iterations in {:.0} s, {:.0} exec/s, {} restarts, {} denied by safety rules",
        summary.target,
        summary.version,
        c.iterations,
        summary.duration_secs,
        summary.exec_per_sec,
        c.restarts,
        c.denied
    );
    for f in &summary.findings {
        println!("finding {} ({}x): {}", f.signature, f.count, f.dir.display());
    }
    println!("report: {}", summary.report_md.display());
    Ok(if summary.has_findings() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_replay(finding: &Path) -> Result<ExitCode, String> {
    let opts = ReplayOptions::from_meta(finding, Arc::new(source::builtin())).map_err(|e| e.to_string())?;
    let outcome = replay(finding, &opts).map_err(|e| e.to_string())?;
    println!(
        "{}: expected {}, got {}: {}",
        finding.display(),
        outcome.expected,
        outcome.got.as_deref().unwrap_or("nothing"),
        if outcome.reproduced { "reproduced" } else { "did not reproduce" }
    );
    Ok(if outcome.reproduced { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn run_minimize(finding: &Path) -> Result<ExitCode, String> {
    let opts = ReplayOptions::from_meta(finding, Arc::new(source::builtin())).map_err(|e| e.to_string())?;
    let o = minimize(finding, &opts).map_err(|e| e.to_string())?;
    println!(
        "{}: {} steps -> {}, {} bytes -> {} in {} runs; {}",
        finding.display(),
        o.steps_before,
        o.steps_after,
        o.bytes_before,
        o.bytes_after,
        o.runs,
        if o.reproduced { "the minimized reproducer still reproduces" } else { "did not reproduce" }
    );
    Ok(if o.reproduced { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
