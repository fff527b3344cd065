#!/usr/bin/env bash
# sandvm run on every architecture, checked from inside the guest: the machine
# name, the vCPU count, the memory size and the kernel parameters equal what
# was asked for; exit statuses and hostile arguments come back unchanged.
# Usage: tests/vm/run_test.sh [BUILDDIR]   Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}
sv="$b/sandvm"
pass=0 fail=0 skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

declare -A qemu=([x86_64]=qemu-system-x86_64 [aarch64]=qemu-system-aarch64
                 [ppc64le]=qemu-system-ppc64 [s390x]=qemu-system-s390x)
for arch in x86_64 aarch64 ppc64le s390x; do
  if ! command -v "${qemu[$arch]}" >/dev/null; then
    echo "SKIP $arch: ${qemu[$arch]} is not installed (tools/deps test installs it)"
    skip=$((skip + 1)); continue
  fi
  # The guest is built by sandvm itself on first use (guest/build-guest).
  out=$("$sv" run --arch "$arch" -- uname -m 2>"$b/run-$arch.err"); rc=$?
  want=$arch; [ "$arch" = ppc64le ] && want=ppc64le
  if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then ok "$arch: uname -m prints $want, exit 0"
  else ko "$arch: uname -m" "exit $rc, output '$out', stderr: $(tail -3 "$b/run-$arch.err")"; fi

  "$sv" run --arch "$arch" -- sh -c 'exit 7' >/dev/null 2>&1; rc=$?
  if [ $rc -eq 7 ]; then ok "$arch: sh -c 'exit 7' exits 7"; else ko "$arch: exit 7" "exit $rc"; fi

  vcpus=2 mem=512 token="sandvm.test=$arch-$RANDOM"
  out=$("$sv" run --arch "$arch" --vcpus $vcpus --memory $mem --append "$token" -- \
        sh -c 'grep -c ^processor /proc/cpuinfo; ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l; sed -n "s/^MemTotal: *\([0-9]*\) kB/\1/p" /proc/meminfo; cat /proc/cmdline' 2>"$b/run-$arch.err"); rc=$?
  online=$(sed -n 2p <<<"$out"); memkb=$(sed -n 3p <<<"$out"); cmdline=$(sed -n 4p <<<"$out")
  if [ $rc -eq 0 ] && [ "$online" = "$vcpus" ]; then ok "$arch: the guest sees $vcpus vCPUs"
  else ko "$arch: vcpus" "exit $rc, guest saw '$online' CPUs (output: $(tr '\n' '|' <<<"$out"))"; fi
  # MemTotal is RAM minus what the kernel reserves: between 75% and 100% of the config
  if [ $rc -eq 0 ] && [ -n "$memkb" ] && [ "$memkb" -le $((mem * 1024)) ] && [ "$memkb" -ge $((mem * 1024 * 3 / 4)) ]; then
    ok "$arch: MemTotal ${memkb} kB fits --memory ${mem} MiB"
  else ko "$arch: memory" "MemTotal '$memkb' kB for --memory $mem MiB"; fi
  if [ $rc -eq 0 ] && grep -qw -- "$token" <<<"$cmdline" && grep -qw quiet <<<"$cmdline"; then
    ok "$arch: /proc/cmdline has the config's parameters and --append"
  else ko "$arch: cmdline" "'$cmdline' lacks '$token' or quiet"; fi

  # Arguments are data on both sides: spaces, quotes, newlines, non-ASCII, empty.
  out=$("$sv" run --arch "$arch" -- printf '[%s]' 'a b' "c'd" 'e"f' $'g\nh' 'é😀' '' '$(id)' 2>/dev/null); rc=$?
  want=$(printf '[%s]' 'a b' "c'd" 'e"f' $'g\nh' 'é😀' '' '$(id)')
  if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then ok "$arch: hostile arguments arrive unchanged"
  else ko "$arch: arguments" "got '$out'"; fi
done

# A guest that cannot come up in time: an error naming the stage, not a hang.
arch=$(uname -m)
err=$("$sv" run --timeout 1 -- true 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && grep -q "did not start the command within 1 s (last stage reached:" <<<"$err"; then
  ok "timeout: names the stage reached"
else ko timeout "exit $rc: $err"; fi
# Ctrl-C stops the VM: exit 130, no QEMU left behind.
tag="sandvm.ctrlc=$RANDOM$RANDOM"
"$sv" run --append "$tag" -- sleep 600 >/dev/null 2>&1 &
p=$!; sleep 4
started=$(pgrep -f -- "$tag" | grep -vx "$p" | wc -l)
kill -INT $p; wait $p; rc=$?
sleep 0.3
if [ $rc -eq 130 ] && [ "$started" -ge 1 ] && ! pgrep -f -- "$tag" >/dev/null; then
  ok "ctrl-c: exit 130 and QEMU is gone"
else ko ctrl-c "exit $rc, QEMU seen running: $started, left: $(pgrep -af -- "$tag" | head -2)"; fi
# No Debian tooling: the guest builder says so and exits, it does not hang.
err=$(timeout 20 env PATH=/nonexistent /bin/bash guest/build-guest x86_64 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && grep -q "needs a Debian host" <<<"$err"; then ok "non-Debian host: clear error from the guest builder"
else ko non-debian "exit $rc: $err"; fi
err=$("$sv" run --arch riscv64 -- true 2>&1); rc=$?
if [ $rc -eq 2 ] && grep -q "riscv64" <<<"$err"; then ok "unknown arch: usage error naming it"
else ko unknown-arch "exit $rc: $err"; fi
[ $skip -gt 0 ] && echo "($skip architectures SKIPPED, see above)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
