#!/usr/bin/env bash
# End to end against real QEMU 7.2: query-status commands/s through qmpcheck's client, a
# minimal blocking client (write, read one line), the minimal client + check::fast, and
# QEMU's own Python client qemu.qmp 0.0.6 (installed into a throwaway venv), all on one QEMU
# process; then QEMU start-up time per launch. Prints a Markdown table (reports/perf.md).
#
# Usage: benches/e2e/run.sh [COMMANDS_PER_ROUND [ROUNDS [LAUNCHES]]]
# Env: QEMU (default /usr/bin/qemu-system-x86_64), QMPCHECK_VENV (default /tmp/qmpcheck-e2e-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${QMPCHECK_VENV:-/tmp/qmpcheck-e2e-venv}"
if ! "$venv/bin/python" -c 'import qemu.qmp' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'qemu.qmp==0.0.6'
fi
export QMPCHECK_PYTHON="$venv/bin/python"
export QMPCHECK_E2E_COMMANDS="${1:-5000}"
export QMPCHECK_E2E_ROUNDS="${2:-5}"
export QMPCHECK_E2E_LAUNCHES="${3:-10}"
cargo bench --bench e2e_qemu -- --bench
