#!/usr/bin/env python3
"""Prints the medians of the last criterion run (target/criterion) as Markdown tables, one per
group, with throughput and ratios against a baseline of the same group and input.

Usage: benches/summarize.py [TARGET_DIR]   (after `cargo bench --bench replies` etc.)
"""
import json
import sys
from pathlib import Path

BASELINES = {"decode": "serde-value", "validate": "naive", "stream-items": "naive-validate",
             "emulator": "baseline-parse+encode"}


def load(root: Path):
    rows = []
    for bench in sorted(root.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        median_ns = estimates["median"]["point_estimate"]
        rows.append((meta["group_id"], meta.get("function_id") or "", meta.get("value_str") or "",
                     median_ns, meta.get("throughput") or {}))
    return rows


def human_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def rate(ns: float, throughput: dict) -> str:
    if "Bytes" in throughput:
        return f"{throughput['Bytes'] / (ns / 1e9) / 1e6:.1f} MB/s"
    if "Elements" in throughput:
        return f"{throughput['Elements'] / (ns / 1e9):,.0f} /s"
    return ""


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target") / "criterion"
    rows = load(root)
    groups = {}
    for group, function, value, ns, throughput in rows:
        groups.setdefault(group, []).append((function, value, ns, throughput))
    for group, items in groups.items():
        base_name = BASELINES.get(group)
        baseline = {value: ns for function, value, ns, _ in items if function == base_name}
        sonic = {value: ns for function, value, ns, _ in items if function == "sonic-dom"}
        print(f"\n### {group}\n")
        print("| bench | input | median | throughput | vs " + (base_name or "-") + " | vs sonic-dom |")
        print("|---|---|---:|---:|---:|---:|")
        for function, value, ns, throughput in sorted(items, key=lambda i: (i[1], i[0])):
            vs_base = f"{baseline[value] / ns:.2f}x" if value in baseline else ""
            vs_sonic = f"{sonic[value] / ns:.2f}x" if value in sonic else ""
            print(f"| {function} | {value} | {human_time(ns)} | {rate(ns, throughput)} | {vs_base} | {vs_sonic} |")


if __name__ == "__main__":
    main()
