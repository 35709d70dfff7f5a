#!/usr/bin/env python3
"""Lockstep query-status through QEMU's own Python client (qemu.qmp), for benches/e2e_qemu.rs.

Usage: qmp_lockstep.py SOCKET COUNT [ROUNDS]. Connects once, sends COUNT commands per round,
each awaited before the next (lockstep, as a test harness does), and prints one line per
round: "qemu.qmp ROUND COMMANDS_PER_SECOND".
"""
import asyncio
import sys
import time

from qemu.qmp import QMPClient


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


if __name__ == "__main__":
    ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), ROUNDS))
