#!/usr/bin/env bash
# Why request bytes cost QEMU time: counts QEMU 7.2's syscalls (strace -c) while a client
# sends 3000 lockstep query-status, once without an id (28-byte request) and once with a
# string id as wire::Client::execute sends it (about 46 bytes). QEMU's monitor reads its
# socket one byte per recvmsg and wakes its main loop for each byte, so every request byte
# costs syscalls. Needs strace; runs QEMU in a scratch dir under /tmp.
set -euo pipefail
qemu="${QEMU:-/usr/bin/qemu-system-x86_64}"
dir="$(mktemp -d /tmp/qmpcheck-syscalls.XXXXXX)"
trap 'kill "$qemu_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
"$qemu" -machine none -nodefaults -display none -no-user-config -S \
    -qmp "unix:$dir/qmp.sock,server=on,wait=off" &
qemu_pid=$!
for _ in $(seq 50); do [ -S "$dir/qmp.sock" ] && break; sleep 0.1; done
cat > client.py <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()
s.sendall(b'{"execute": "qmp_capabilities"}\r\n')
f.readline()
with_id = sys.argv[2] == "id"
started = time.perf_counter()
for i in range(3000):
    s.sendall((b'{"execute":"query-status","id":"qmpcheck-%d"}\r\n' % i) if with_id
              else b'{"execute": "query-status"}\r\n')
    f.readline()
print(f"{sys.argv[2]}: {3000 / (time.perf_counter() - started):.0f} cmd/s under strace")
PY
for mode in plain id; do
    strace -c -f -p "$qemu_pid" -o "strace.$mode" 2>/dev/null &
    strace_pid=$!
    sleep 0.5
    python3 client.py "$dir/qmp.sock" "$mode"
    kill -INT "$strace_pid"
    wait "$strace_pid" 2>/dev/null || true
    echo "QEMU syscalls per command ($mode):"
    # Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
    awk 'NR > 2 && $NF ~ /^(recvmsg|read|write|poll|ppoll|sendmsg)$/ {
        calls = (NF == 6) ? $(NF - 2) : $(NF - 1); printf "  %-8s %6.1f\n", $NF, calls / 3000 }' "strace.$mode"
done
