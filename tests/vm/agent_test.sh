#!/usr/bin/env bash
# agent_test.sh: the exec channel on every arch. Builds the default guest
# (guest/build-guest), boots it with a plain QEMU command line under TCG plus a
# virtio-serial port named agent.channel.0 on a unix socket, and runs commands
# through it with tests/vm/agent_client.c (sv_agent_exec): output, exit status,
# separate stderr, hostile arguments, stdin, sequential connections, a client
# killed mid-command, then QMP system_powerdown must end QEMU.
#
# Usage: tests/vm/agent_test.sh [ARCH...]     (default: all four)
# Prints PASS/FAIL/SKIP lines, TIME lines (exec round trip, boot to first
# answer) and last "N passed, N failed". Exit status 0 only when nothing failed.
#
# Environment:
#   SANDVM_BUILD_DIR          the meson build dir with tests/agent_client (default build)
#   SANDVM_TEST_BOOT_TIMEOUT  seconds for the guest's agent to answer (default 240)
set -uo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${SANDVM_BUILD_DIR:-$ROOT/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac
CLIENT=$BUILD_DIR/tests/agent_client
BOOT_TIMEOUT=${SANDVM_TEST_BOOT_TIMEOUT:-240}

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); printf 'PASS %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
skip() { printf 'SKIP %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sandvm-agent-test.XXXXXX")
QPID=
cleanup() {
  if [ -n "$QPID" ]; then kill -9 "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$CLIENT" ]; then
  fail "$CLIENT not found (build with tests enabled: SANDVM_TESTS=true tools/build)"
  echo "$PASSED passed, $FAILED failed"
  exit 1
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# qemu_cmd ARCH: the QEMU argv into QEMU_CMD, the virtio-serial controller into SERIAL_DEV
qemu_cmd() {
  case $1 in
    x86_64)  QEMU_CMD=(qemu-system-x86_64 -machine q35,accel=tcg) SERIAL_DEV=virtio-serial-pci console=ttyS0 ;;
    aarch64) QEMU_CMD=(qemu-system-aarch64 -machine virt,accel=tcg -cpu max,pauth-impdef=on)
             SERIAL_DEV=virtio-serial-pci console=ttyAMA0 ;;
    ppc64le) QEMU_CMD=(qemu-system-ppc64 -machine pseries,accel=tcg,x-vof=on) SERIAL_DEV=virtio-serial-pci console=hvc0 ;;
    s390x)   QEMU_CMD=(qemu-system-s390x -machine s390-ccw-virtio,accel=tcg) SERIAL_DEV=virtio-serial-ccw console=ttysclp0 ;;
  esac
  QEMU_CMD+=(-m 512 -nographic -no-reboot -append "console=$console quiet panic=-1")
}

# ex NAME ARGS...: runs agent_client exec; OUT, ERR, RC
ex() {
  local name=$1; shift
  "$CLIENT" exec "$SOCK" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  RC=$?
  OUT=$(cat "$WORK/$name.out"; echo .); OUT=${OUT%.}
  ERR=$(cat "$WORK/$name.err"; echo .); ERR=${ERR%.}
}

run_arch() {
  local arch=$1 qemu pkg
  case $arch in
    x86_64) qemu=qemu-system-x86_64 pkg=qemu-system-x86 ;;
    aarch64) qemu=qemu-system-aarch64 pkg=qemu-system-arm ;;
    ppc64le) qemu=qemu-system-ppc64 pkg=qemu-system-ppc ;;
    s390x) qemu=qemu-system-s390x pkg=qemu-system-misc ;;
    *) fail "$arch: unknown arch"; return ;;
  esac
  if ! command -v "$qemu" >/dev/null; then
    skip "$arch: $qemu not found (Debian package $pkg; tools/deps test installs it) - NOT TESTED"
    return
  fi
  local manifest t0 t1 dir
  t0=$(now_ms)
  if ! manifest=$("$ROOT/guest/build-guest" "$arch" 2>"$WORK/build-$arch.err"); then
    fail "$arch build-guest: $(tr '\n' '|' <"$WORK/build-$arch.err")"
    return
  fi
  t1=$(now_ms)
  dir=$(dirname "$manifest")
  pass "$arch build-guest ($((t1 - t0))ms) -> $manifest"
  qemu_cmd "$arch"

  local W=$WORK/$arch
  mkdir -p "$W"
  SOCK=$W/agent.sock
  local qmp=$W/qmp.sock log=$W/console.log
  t0=$(now_ms)
  "${QEMU_CMD[@]}" -kernel "$dir/kernel" -initrd "$dir/initramfs.cpio.gz" \
    -device "$SERIAL_DEV" \
    -chardev "socket,id=agent0,path=$SOCK,server=on,wait=off" \
    -device virtserialport,chardev=agent0,name=agent.channel.0 \
    -qmp "unix:$qmp,server=on,wait=off" </dev/null >"$log" 2>&1 &
  QPID=$!
  local i
  for i in $(seq 200); do [ -S "$SOCK" ] && [ -S "$qmp" ] && break; sleep 0.05; done

  # 1. the first exec waits for the boot
  ex uname -t $((BOOT_TIMEOUT * 1000)) -- uname -m
  t1=$(now_ms)
  if [ $RC -eq 0 ] && [ "$OUT" = "$arch"$'\n' ]; then
    pass "$arch: uname -m prints $arch (first answer $((t1 - t0))ms after QEMU started)"
  else
    fail "$arch: uname -m: exit $RC, out $(printf '%q' "$OUT"), err $ERR; console: $(tail -c 400 "$log" | tr -d '\r' | tr '\n' '|')"
    kill -9 "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; QPID=
    return
  fi

  # 2. exit status
  ex exit3 -t 60000 -- sh -c 'exit 3'
  if [ $RC -eq 3 ]; then pass "$arch: sh -c 'exit 3' exits 3"; else fail "$arch: exit 3: exit $RC, err $ERR"; fi

  # 3. stderr apart from stdout
  ex streams -t 60000 -- sh -c 'echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 5'
  if [ $RC -eq 5 ] && [ "$OUT" = $'out1\nout2\n' ] && [ "$ERR" = $'err1\nerr2\n' ]; then
    pass "$arch: stdout and stderr arrive separately"
  else
    fail "$arch: streams: exit $RC, out $(printf '%q' "$OUT"), err $(printf '%q' "$ERR")"
  fi

  # 4. arguments are data: spaces, quotes, newlines, non-ASCII, empty, shell syntax
  local -a args=('a b' "c'd" 'e"f' $'g\nh' 'é😀' '' '$(id)' '`id`' '\' ' ' $'\t' ';|&<>*?')
  ex args -t 60000 -- printf '[%s]' "${args[@]}"
  local want
  want=$(printf '[%s]' "${args[@]}")
  if [ $RC -eq 0 ] && [ "$OUT" = "$want" ]; then pass "$arch: hostile arguments arrive unchanged"
  else fail "$arch: arguments: exit $RC, got $(printf '%q' "$OUT")"; fi

  # 5. stdin relayed, with its end
  "$CLIENT" exec "$SOCK" -t 60000 -i -- sh -c 'wc -c; echo done' <<<"hello from the host" >"$W/stdin.out" 2>&1
  RC=$?
  if [ $RC -eq 0 ] && [ "$(tr -d ' ' <"$W/stdin.out")" = $'20\ndone' ]; then pass "$arch: stdin relayed up to its end"
  else fail "$arch: stdin: exit $RC, output $(tr '\n' '|' <"$W/stdin.out")"; fi

  # 6. a command that does not exist
  ex notfound -t 60000 -- nosuchcmd-sandvm
  if [ $RC -eq 255 ] && [[ $ERR == *'command not found in the guest: "nosuchcmd-sandvm"'* ]]; then
    pass "$arch: a missing command is reported by name"
  else fail "$arch: missing command: exit $RC, err $ERR"; fi

  # 7. sequential connections
  local ok=1
  for i in 1 2 3 4 5; do
    ex seq$i -t 60000 -- sh -c "echo $i; exit $i"
    [ $RC -eq "$i" ] && [ "$OUT" = "$i"$'\n' ] || { ok=0; fail "$arch: sequential exec $i: exit $RC, out $(printf '%q' "$OUT"), err $ERR"; break; }
  done
  [ $ok = 0 ] || pass "$arch: 5 sequential execs"

  # 8. a client killed mid-command: the command is killed, the channel serves the next one
  "$CLIENT" exec "$SOCK" -t 60000 -- sh -c 'echo started; exec sleep 1000' >"$W/bg.out" 2>&1 &
  local cpid=$!
  for i in $(seq 600); do grep -q started "$W/bg.out" && break; sleep 0.1; done
  if ! grep -q started "$W/bg.out"; then
    fail "$arch: the background command did not start: $(cat "$W/bg.out")"
  fi
  kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
  # (busybox has no pgrep; a zombie shows as "[sleep]"; look for up to 10 s)
  ex afterkill -t 60000 -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
      ps | grep -q "[s]leep 1000" || { echo gone; exit 0; }; sleep 0.5; done; ps; exit 1'
  if [ $RC -eq 0 ] && [ "$OUT" = $'gone\n' ]; then pass "$arch: a client killed mid-command: command killed, next exec works"
  else fail "$arch: after killing a client: exit $RC, out $(printf '%q' "$OUT"), err $ERR"; fi

  # 9. the same without a next client: killed after the grace period
  "$CLIENT" exec "$SOCK" -t 60000 -- sh -c 'echo started; exec sleep 999' >"$W/bg2.out" 2>&1 &
  cpid=$!
  for i in $(seq 600); do grep -q started "$W/bg2.out" && break; sleep 0.1; done
  kill -9 "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
  sleep 8   # the agent waits 2 s (a grace for reordered notifications) before killing
  ex aftergrace -t 60000 -- sh -c 'ps | grep -q "[s]leep 999" && echo running || echo gone'
  if [ $RC -eq 0 ] && [ "$OUT" = $'gone\n' ]; then pass "$arch: a client killed mid-command, nobody connecting: command killed"
  else fail "$arch: after killing a client, waiting: exit $RC, out $(printf '%q' "$OUT"), err $ERR"; fi

  # round trip of `true`, for the record
  local bench
  if bench=$("$CLIENT" bench "$SOCK" 20 2>&1); then
    printf 'TIME %s: exec round trip (true, 20 execs, ms): %s\n' "$arch" "$bench"
  else
    fail "$arch: bench: $bench"
  fi

  # 10. QMP system_powerdown: the guest powers off, QEMU exits
  local perr
  t0=$(now_ms)
  if ! perr=$("$CLIENT" powerdown "$qmp" 2>&1); then
    fail "$arch: system_powerdown: $perr"
  fi
  for i in $(seq 400); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.05; done
  t1=$(now_ms)
  if kill -0 "$QPID" 2>/dev/null; then
    fail "$arch: QEMU still running 20 s after system_powerdown; console: $(tail -c 300 "$log" | tr -d '\r' | tr '\n' '|')"
    kill -9 "$QPID" 2>/dev/null
  else
    # the clean way: the agent (PID 1) saw the request and powered off
    local why
    why=$(grep -ao 'sandvm-agent: powering off ([^)]*)' "$log" | head -n1)
    if [ -n "$why" ]; then pass "$arch: system_powerdown ends QEMU ($((t1 - t0))ms; $why)"
    else fail "$arch: QEMU ended without the agent powering off; console: $(tail -c 300 "$log" | tr -d '\r' | tr '\n' '|')"; fi
  fi
  wait "$QPID" 2>/dev/null
  QPID=
}

ARCHES=("$@")
[ ${#ARCHES[@]} -gt 0 ] || ARCHES=(x86_64 aarch64 ppc64le s390x)
for a in "${ARCHES[@]}"; do run_arch "$a"; done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
