//! The CLI contract of design.md: output shapes and exit codes (0 clean, 1 findings, 2 usage
//! or infrastructure error, with a message naming what and where).

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn qmpcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qmpcheck")).args(args).output().expect("qmpcheck runs")
}

fn seed(name: &str) -> String {
    format!("{}/../shared/seeds/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

const SEED_QAPI: &str = "003_3e9b81ae133ae229.txt";

#[test]
fn spec_json_has_the_design_shape() {
    let out = qmpcheck(&["spec", &seed(SEED_QAPI), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let doc = stdout_json(&out);
    let commands = doc["commands"].as_array().expect("commands array");
    assert_eq!(commands.len(), 29);
    assert_eq!(doc["events"].as_array().map(Vec::len), Some(4));
    for c in commands {
        assert!(c["name"].is_string(), "{c}");
        assert!(c["args"].is_array(), "{c}");
        assert!(c.get("returns").is_some(), "{c}");
        let source = c["source"].as_str().expect("source string");
        assert!(source.contains(SEED_QAPI) && source.split(':').count() >= 3, "FILE:LINE[:COL]: {source}");
        for a in c["args"].as_array().into_iter().flatten() {
            assert!(a["name"].is_string() && a["type"].is_string() && a["optional"].is_boolean(), "{a}");
        }
    }
    let msp =
        commands.iter().find(|c| c["name"] == "migrate-set-parameters").expect("migrate-set-parameters");
    let tls =
        msp["args"].as_array().and_then(|a| a.iter().find(|m| m["name"] == "tls-creds")).expect("tls-creds");
    assert_eq!(tls["type"], "StrOrNull");
    assert_eq!(tls["optional"], true);
    let missing: Vec<_> = doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["kind"] == "missing-include")
        .map(|d| d["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
}

#[test]
fn a_malformed_qapi_expression_exits_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{ 'command': 'ok' }\n{ 'struct': 'S',\n  'data' { 'a': 'int' } }\n")
        .expect("write");
    let out = qmpcheck(&["spec", path.to_str().expect("utf-8 path"), "--kind", "qapi"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.json:3:"), "names file and line: {stderr}");
    assert!(stderr.contains("expected ':'"), "says what was expected: {stderr}");
    // What could be read is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"), "the good command is kept");
}

#[test]
fn a_missing_source_exits_2_naming_it() {
    let out = qmpcheck(&["spec", "/nonexistent/qapi.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/qapi.json"));
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(qmpcheck(&["spec"]).status.code(), Some(2));
    assert_eq!(qmpcheck(&["spec", "builtin", "--format", "yaml"]).status.code(), Some(2));
    assert_eq!(qmpcheck(&["record", "--target", "kvm:/bin/true", "--out", "x"]).status.code(), Some(2));
}

#[test]
fn builtin_model_is_qemu_7_2() {
    let out = qmpcheck(&["spec", "builtin", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = stdout_json(&out);
    assert_eq!(doc["commands"].as_array().map(Vec::len), Some(216));
    assert_eq!(doc["events"].as_array().map(Vec::len), Some(52));
    assert_eq!(doc["diagnostics"].as_array().map(Vec::len), Some(0));
}

#[test]
fn schema_writes_one_file_per_args_return_and_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = qmpcheck(&["schema", &seed(SEED_QAPI), "--out", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let count = |sub: &str| std::fs::read_dir(dir.path().join(sub)).map(|d| d.count()).unwrap_or(0);
    // 29 commands: an args schema for each that takes arguments, a return schema for each.
    assert!(count("commands") >= 29, "{}", count("commands"));
    assert_eq!(count("events"), 4);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("commands/migrate-set-parameters.args.json"))
            .expect("args schema"),
    )
    .expect("schema JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
}

#[test]
fn compat_of_a_truncated_recording_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/qemu-7.2/qemu-system-x86_64.json"),
    )
    .expect("recording");
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() / 2]).expect("write");
    let out = qmpcheck(&["compat", "builtin", cut.to_str().expect("utf-8"), "--kind", "introspect"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cut.json:"), "{stderr}");
}

#[test]
fn compat_gates_by_fail_on() {
    let old = format!("{}@old", seed("002_93f31401e52ab94f.txt"));
    let new = format!("{}@new", seed("002_93f31401e52ab94f.txt"));
    assert_eq!(qmpcheck(&["compat", &old, &new]).status.code(), Some(1), "renames are breaking");
    assert_eq!(qmpcheck(&["compat", &old, &new, "--fail-on", "never"]).status.code(), Some(0));
    assert_eq!(qmpcheck(&["compat", "builtin", "builtin", "--fail-on", "any"]).status.code(), Some(0));
    let out = qmpcheck(&[
        "compat",
        &old,
        &new,
        "--reference",
        &seed("001_c6909e2e14ac2656.txt"),
        "--format",
        "json",
    ]);
    let doc = stdout_json(&out);
    let paths: Vec<&str> =
        doc["changes"].as_array().expect("changes").iter().filter_map(|c| c["path"].as_str()).collect();
    assert!(paths.contains(&"drive-mirror.arguments.buf-size"), "{paths:?}");
}

#[test]
fn drift_between_seed_003_and_live_qemu_7_2_covers_migration_commands() {
    let Some(qemu) = support::qemu_binary("qemu-system-x86_64") else { return };
    let live = format!("qemu:{}", qemu.display());
    let out = qmpcheck(&["spec", &seed(SEED_QAPI), &live, "--drift", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "drift is a finding: {}", String::from_utf8_lossy(&out.stderr));
    let drifts = stdout_json(&out);
    let messages: Vec<&str> =
        drifts.as_array().expect("array").iter().filter_map(|d| d["message"].as_str()).collect();
    // QEMU 7.2 still has the compression parameters that seed 003 (QEMU 9/10) removed.
    assert!(
        messages.iter().any(|m| m.contains("'compress-level'") && m.contains("query-migrate-parameters")),
        "{messages:#?}"
    );
    // Seed 003 documents members 7.2 does not have yet.
    assert!(messages.iter().any(|m| m.contains("'zero-page-detection'")), "{messages:#?}");
    assert!(messages.iter().all(|m| m.contains(&live) || m.contains(SEED_QAPI)), "names both sources");
}
