#!/usr/bin/env python3
"""Lockstep query-status through QEMU's own Python client (qemu.qmp), for benches/e2e_qemu.rs.

Usage: qmp_lockstep.py SOCKET COUNT [ROUNDS] [async|legacy]. Connects once, sends COUNT
commands per round, each answered before the next (lockstep, as a test harness does), and
prints one line per round: "qemu.qmp ROUND COMMANDS_PER_SECOND". `async` (default) uses
QMPClient.execute; `legacy` uses the synchronous QEMUMonitorProtocol.cmd that QEMU's own
iotests and scripts use.
"""
import asyncio
import sys
import time

from qemu.qmp import QMPClient
from qemu.qmp.legacy import QEMUMonitorProtocol


async def main(socket: str, count: int, rounds: int) -> None:
    qmp = QMPClient("qmpcheck-bench")
    await qmp.connect(socket)
    for i in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            await qmp.execute("query-status")
        elapsed = time.perf_counter() - started
        print(f"qemu.qmp {i} {count / elapsed:.1f}", flush=True)
    await qmp.disconnect()


def legacy(socket: str, count: int, rounds: int) -> None:
    qmp = QEMUMonitorProtocol(socket)
    qmp.connect()
    for i in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            qmp.cmd("query-status")
        elapsed = time.perf_counter() - started
        print(f"qemu.qmp {i} {count / elapsed:.1f}", flush=True)
    qmp.close()


if __name__ == "__main__":
    ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    MODE = sys.argv[4] if len(sys.argv) > 4 else "async"
    if MODE == "legacy":
        legacy(sys.argv[1], int(sys.argv[2]), ROUNDS)
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), ROUNDS))
