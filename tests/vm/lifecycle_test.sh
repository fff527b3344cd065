#!/usr/bin/env bash
# The VM lifecycle through the sandvm CLI alone, one invocation per step, on
# the real QEMU of every architecture with the default guests: create, start,
# exec (status, streams, hostile arguments), pause/resume/status, stop leaving
# nothing behind; a QEMU killed under a VM; a CLI killed in the middle of
# start; concurrent calls; templating (save, create --from, no second boot);
# a SIGSTOPped QEMU; error messages and exit codes; every verb's --help.
# Uses a private state root under /tmp (never /run/sandvm) and removes it.
# Usage: tests/vm/lifecycle_test.sh [BUILDDIR]   Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}
sv="$PWD/$b/sandvm"
pass=0 fail=0 skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

tmp=$(mktemp -d /tmp/sandvm-lifecycle.XXXXXX)
root="$tmp/root"   # created by sandvm itself (mode 0700)
export SANDVM_ROOT="$root"

# Pids of processes whose command line contains $1 (bash reads /proc itself,
# so no helper process of ours matches).
procs_with() {
  local p c
  for p in /proc/[0-9]*; do
    c=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $c == *"$1"* ]] && echo "${p#/proc/}"
  done
}

cleanup() {
  local d p
  for d in "$root"/*/; do
    [ -d "$d" ] || continue
    "$sv" delete --force "$(basename "$d")" >/dev/null 2>&1
  done
  # whatever survived (a test that failed half-way): our processes only, by pid
  for p in $(procs_with "$tmp"); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One JSON document on stdin is valid: python3, else jq, else its outline.
json_valid() {
  if command -v python3 >/dev/null; then python3 -c 'import json, sys; json.load(sys.stdin)' 2>/dev/null
  elif command -v jq >/dev/null; then jq -e . >/dev/null 2>&1
  else grep -qE '^[[{].*[]}]$'; fi
}
# "key": value of a compact JSON object on stdin (string values unquoted)
json_field() { grep -oE "\"$1\":(\"[^\"]*\"|[^,}]*)" | head -1 | sed -E "s/^\"$1\"://; s/^\"(.*)\"$/\1/"; }

declare -A qemu=([x86_64]=qemu-system-x86_64 [aarch64]=qemu-system-aarch64
                 [ppc64le]=qemu-system-ppc64 [s390x]=qemu-system-s390x)
have_arch() { command -v "${qemu[$1]}" >/dev/null; }

# After `stop`/`delete`: the VM's directory, its sockets and its QEMU are gone.
check_gone() {  # name id dir pid
  local name=$1 id=$2 dir=$3 pid=$4 left
  left=$(procs_with "$dir")
  if [ -e "$dir" ]; then ko "$name" "$dir still exists: $(ls -A "$dir" | tr '\n' ' ')"
  elif ls -A "$root" | grep -qF -- "$id"; then ko "$name" "the root still has: $(ls -A "$root" | tr '\n' ' ')"
  elif [ -n "$left" ]; then ko "$name" "processes with $dir in their command line: $left"
  elif [ -n "$pid" ] && [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null &&
       tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q qemu; then ko "$name" "QEMU pid $pid is still running"
  else ok "$name"; fi
}

# ---- 1. every architecture: create, start, exec, pause/resume, stop ----------------
for arch in x86_64 aarch64 ppc64le s390x; do
  if ! have_arch "$arch"; then
    echo "SKIP $arch: ${qemu[$arch]} is not installed (tools/deps test installs it)"
    skip=$((skip + 1)); continue
  fi
  id="lc-$arch"
  out=$("$sv" create --arch "$arch" "$id" 2>"$tmp/err"); rc=$?
  if [ $rc -eq 0 ] && [ "$out" = "$id" ]; then ok "$arch: create prints the id"
  else ko "$arch: create" "exit $rc, output '$out': $(tail -3 "$tmp/err")"; continue; fi
  st=$("$sv" status "$id" 2>&1)
  if grep -qx 'state: created' <<<"$st" && grep -qx "arch: $arch" <<<"$st"; then ok "$arch: a created VM is created, arch $arch"
  else ko "$arch: status after create" "$st"; fi
  "$sv" --root "$root" start "$id" 2>"$tmp/err"; rc=$?   # the global --root, same root
  if [ $rc -eq 0 ]; then ok "$arch: start (global --root)"
  else ko "$arch: start" "exit $rc: $(tail -3 "$tmp/err")"; "$sv" delete --force "$id" >/dev/null 2>&1; continue; fi
  sj=$("$sv" status --json --root "$root" "$id")
  dir=$(json_field dir <<<"$sj"); pid=$(json_field pid <<<"$sj")
  if json_valid <<<"$sj" && [ "$(json_field state <<<"$sj")" = running ] && [ "$dir" = "$root/$id" ] &&
     [ "$pid" -gt 0 ] 2>/dev/null && [ -S "$dir/qmp.sock" ]; then ok "$arch: status --json: running, pid, dir with its QMP socket"
  else ko "$arch: status --json" "$sj"; fi

  out=$("$sv" exec "$id" -- uname -m 2>"$tmp/err"); rc=$?
  if [ $rc -eq 0 ] && [ "$out" = "$arch" ]; then ok "$arch: exec uname -m prints $arch"
  else ko "$arch: exec uname -m" "exit $rc, output '$out': $(tail -3 "$tmp/err")"; fi

  "$sv" exec "$id" -- sh -c 'echo out; echo err >&2; exit 7' >"$tmp/o" 2>"$tmp/e"; rc=$?
  if [ $rc -eq 7 ] && [ "$(cat "$tmp/o")" = out ] && [ "$(cat "$tmp/e")" = err ]; then
    ok "$arch: exec exits 7, stdout and stderr on their own streams"
  else ko "$arch: exec streams" "exit $rc, stdout '$(cat "$tmp/o")', stderr '$(cat "$tmp/e")'"; fi

  out=$("$sv" exec "$id" -- printf '[%s]' 'a b' "c'd" 'e"f' $'g\nh' 'é😀' '' '$(id)' '--x' 2>"$tmp/err"); rc=$?
  want=$(printf '[%s]' 'a b' "c'd" 'e"f' $'g\nh' 'é😀' '' '$(id)' '--x')
  if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then ok "$arch: hostile arguments arrive unchanged"
  else ko "$arch: exec arguments" "exit $rc, got '$out': $(tail -2 "$tmp/err")"; fi

  out=$(printf 'in put\n' | "$sv" exec -i --env 'SV_A=x y' --cwd /proc "$id" -- sh -c 'cat; echo "$SV_A"; pwd' 2>"$tmp/err"); rc=$?
  if [ $rc -eq 0 ] && [ "$out" = $'in put\nx y\n/proc' ]; then ok "$arch: exec -i relays stdin; --env, --cwd"
  else ko "$arch: exec -i/--env/--cwd" "exit $rc, got '$out': $(tail -2 "$tmp/err")"; fi
  out=$(printf 'ignored\n' | "$sv" exec "$id" -- cat 2>&1); rc=$?
  if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "$arch: exec without -i gives the command an empty stdin"
  else ko "$arch: exec stdin" "exit $rc, got '$out'"; fi

  "$sv" pause "$id" 2>"$tmp/err"; rc=$?
  st=$("$sv" status "$id" 2>&1); sj=$("$sv" status --json "$id" 2>&1)
  if [ $rc -eq 0 ] && grep -qx 'state: paused' <<<"$st" && json_valid <<<"$sj" && grep -qF '"state":"paused"' <<<"$sj"; then
    ok "$arch: pause -> status paused (text and valid JSON)"
  else ko "$arch: pause" "exit $rc: $(cat "$tmp/err") / $st / $sj"; fi
  "$sv" resume "$id" 2>"$tmp/err"; rc=$?
  st=$("$sv" status "$id" 2>&1)
  if [ $rc -eq 0 ] && grep -qx 'state: running' <<<"$st"; then ok "$arch: resume -> status running"
  else ko "$arch: resume" "exit $rc: $(cat "$tmp/err") / $st"; fi

  "$sv" stop "$id" 2>"$tmp/err"; rc=$?
  if [ $rc -eq 0 ]; then check_gone "$arch: stop leaves no directory, socket or QEMU" "$id" "$dir" "$pid"
  else ko "$arch: stop" "exit $rc: $(tail -3 "$tmp/err")"; fi
done

arch=x86_64
have_arch $arch || arch=$(uname -m)

# ---- qmp, threads, pids, list, console on one running VM ----------------------------
# created from a config file (the default guest's kernel and initramfs) plus flags
id=lc-tools
manifest=$(guest/build-guest $arch 2>/dev/null); gdir=${manifest%/*}
token="sandvm.lifecycle=$RANDOM$RANDOM"
printf '{"arch": "%s", "kernel": "%s", "initrd": "%s", "vcpus": 2, "kernel_params": "sandvm.fromfile=1"}\n' \
  $arch "$gdir/kernel" "$gdir/initramfs.cpio.gz" >"$tmp/vm.json"
if "$sv" create --config "$tmp/vm.json" --append "$token" --memory 384 $id >/dev/null 2>"$tmp/err" &&
   "$sv" start $id 2>>"$tmp/err"; then
  sj=$("$sv" status --json $id); dir=$(json_field dir <<<"$sj"); pid=$(json_field pid <<<"$sj")
  out=$("$sv" exec $id -- sh -c 'cat /proc/cmdline; grep -c ^processor /proc/cpuinfo' 2>&1); rc=$?
  if [ $rc -eq 0 ] && grep -qw -- "$token" <<<"$out" && grep -qw sandvm.fromfile=1 <<<"$out" && [ "$(tail -1 <<<"$out")" = 2 ]; then
    ok "create --config FILE --append: the guest has the file's vCPUs and both kernel parameters"
  else ko "create --config" "exit $rc: $out"; fi
  out=$("$sv" qmp $id '{"execute":"query-status"}' 2>&1); rc=$?
  if [ $rc -eq 0 ] && json_valid <<<"$out" && grep -qF '"status":"running"' <<<"$out"; then ok "qmp: prints the return value as JSON"
  else ko qmp "exit $rc: $out"; fi
  out=$("$sv" qmp $id '{"execute":"no-such-command"}' 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q '^sandvm: .*CommandNotFound' <<<"$out"; then ok "qmp: an error reply exits 1 with its class"
  else ko "qmp error" "exit $rc: $out"; fi
  out=$("$sv" threads $id 2>&1); rc=$?
  n=0; good=1
  for t in $out; do n=$((n + 1)); [ -d "/proc/$pid/task/$t" ] || good=0; done
  if [ $rc -eq 0 ] && [ $n -eq 2 ] && [ $good = 1 ] && json_valid <<<"$("$sv" threads --json $id)"; then
    ok "threads: 2 vCPU threads, each a thread of QEMU"
  else ko threads "exit $rc: '$out' (QEMU pid $pid)"; fi
  out=$("$sv" pids $id 2>&1); rc=$?
  if [ $rc -eq 0 ] && [ "$(head -1 <<<"$out")" = "$pid" ]; then ok "pids: QEMU's pid first"
  else ko pids "exit $rc: '$out', status pid $pid"; fi
  out=$("$sv" list 2>&1); lj=$("$sv" list --json 2>&1)
  if grep -qE "^$id +running +$arch +$pid " <<<"$out" && head -1 <<<"$out" | grep -qE '^ID +STATE +ARCH +PID +CREATED' &&
     json_valid <<<"$lj" && grep -qF "\"id\":\"$id\"" <<<"$lj"; then ok "list: table and JSON show the VM"
  else ko list "$out / $lj"; fi
  # Ctrl-C / SIGTERM in exec: the command is killed in the guest, exit 128+signal
  for sig in INT TERM; do
    "$sv" exec $id -- sleep 600 >/dev/null 2>&1 &
    p=$!; sleep 1; kill -$sig $p; wait $p; rc=$?
    n=$("$sv" exec $id -- sh -c 'ps | grep -c "[s]leep 600"' 2>&1)
    want=$((128 + $(kill -l $sig)))
    if [ $rc -eq $want ] && [ "$n" = 0 ]; then ok "exec: SIG$sig exits $want and kills the command in the guest"
    else ko "exec SIG$sig" "exit $rc (want $want), sleeps left in the guest: '$n'"; fi
  done
  # the console: the guest's shell answers piped input; the relay ends by itself
  printf 'echo console-$((6 * 7))\n' | timeout 30 "$sv" console --linger 2 $id >"$tmp/console" 2>"$tmp/err"; rc=$?
  if [ $rc -eq 0 ] && grep -qa 'console-42' "$tmp/console"; then ok "console: piped input reaches the guest's shell, its output comes back"
  else ko console "exit $rc, output '$(tr -d '\r' <"$tmp/console" | tail -3)': $(tail -3 "$tmp/err")"; fi
  # stop --keep, then the same VM boots again
  "$sv" stop --keep $id 2>"$tmp/err"; rc=$?
  st=$("$sv" status $id 2>&1)
  if [ $rc -eq 0 ] && grep -qx 'state: stopped' <<<"$st" && [ -z "$(procs_with "$dir")" ]; then ok "stop --keep: the VM stays, stopped, its QEMU gone"
  else ko "stop --keep" "exit $rc: $(cat "$tmp/err") / $st"; fi
  "$sv" start $id 2>"$tmp/err" && out=$("$sv" exec $id -- cat /proc/cmdline 2>>"$tmp/err"); rc=$?
  if [ $rc -eq 0 ] && grep -qw -- "$token" <<<"$out"; then ok "start after stop --keep boots the same config again"
  else ko "restart" "exit $rc: $(tail -3 "$tmp/err")"; fi
  pid=$("$sv" pids $id 2>/dev/null | head -1)
  "$sv" stop --grace 0 $id 2>"$tmp/err" || ko "stop --grace 0" "$(cat "$tmp/err")"
  check_gone "stop --grace 0 leaves nothing" $id "$dir" "$pid"
else
  ko "tools VM" "$(tail -3 "$tmp/err")"
fi

# ---- 2. QEMU killed under a running VM ----------------------------------------------
id=lc-killed
if "$sv" create --arch $arch $id >/dev/null 2>"$tmp/err" && "$sv" start $id 2>>"$tmp/err"; then
  sj=$("$sv" status --json $id); dir=$(json_field dir <<<"$sj"); pid=$(json_field pid <<<"$sj")
  kill -9 "$pid"
  for _ in $(seq 50); do [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || break; sleep 0.1; done
  st=$("$sv" status $id 2>&1); rc=$?
  sj=$("$sv" status --json $id 2>&1)
  if [ $rc -eq 0 ] && grep -qx 'state: stopped (crashed)' <<<"$st" && grep -qF '"crashed":true' <<<"$sj"; then
    ok "killed QEMU: status says stopped (crashed)"
  else ko "killed QEMU: status" "exit $rc: $st / $sj"; fi
  "$sv" delete $id 2>"$tmp/err"; rc=$?
  if [ $rc -eq 0 ]; then check_gone "killed QEMU: delete cleans up" $id "$dir" ""
  else ko "killed QEMU: delete" "exit $rc: $(cat "$tmp/err")"; fi
else
  ko "killed QEMU" "create/start: $(tail -3 "$tmp/err")"
fi

# ---- 3. the CLI killed in the middle of start ------------------------------------------
i=0
for delay in 0.05 0.15 0.3 qemu; do
  i=$((i + 1)); id=lc-interrupted-$i; dir="$root/$id"
  "$sv" create --arch $arch $id >/dev/null 2>"$tmp/err" || { ko "kill -9 start ($delay)" "create: $(cat "$tmp/err")"; continue; }
  "$sv" start $id >/dev/null 2>&1 &
  p=$!
  if [ $delay = qemu ]; then   # until QEMU has appeared
    for _ in $(seq 200); do [ -n "$(procs_with "$dir")" ] && break; sleep 0.02; done
  else sleep $delay; fi
  kill -9 $p 2>/dev/null; wait $p 2>/dev/null
  if [ $((i % 2)) = 0 ]; then how="stop --force"; else how="delete --force"; fi
  "$sv" $how $id 2>"$tmp/err"; rc=$?
  if [ $rc -eq 0 ]; then check_gone "kill -9 of start after $delay, then $how: nothing left" $id "$dir" ""
  else ko "kill -9 start ($delay), $how" "exit $rc: $(cat "$tmp/err"); state: $("$sv" status $id 2>&1 | tr '\n' ' ')"; fi
done

# ---- 4. concurrent calls against 4 running VMs -------------------------------------------
ids=()
for n in 1 2 3 4; do
  id=lc-conc-$n
  if "$sv" create --arch $arch --memory 256 $id >/dev/null 2>"$tmp/err" && "$sv" start $id 2>>"$tmp/err"; then ids+=($id)
  else ko "concurrency: VM $n" "$(tail -3 "$tmp/err")"; fi
done
for id in "${ids[@]}"; do "$sv" exec $id -- true >/dev/null 2>&1; done   # all booted
if [ ${#ids[@]} -eq 4 ]; then
  pids=()
  for k in $(seq 0 19); do
    id=${ids[$((k % 4))]}
    if [ $((k % 2)) = 0 ]; then "$sv" exec $id -- echo "hello $k" >"$tmp/c$k.out" 2>"$tmp/c$k.err" &
    else "$sv" status --json $id >"$tmp/c$k.out" 2>"$tmp/c$k.err" & fi
    pids+=($!)
  done
  bad=""
  for k in $(seq 0 19); do
    wait "${pids[$k]}"; rc=$?
    id=${ids[$((k % 4))]}
    if [ $((k % 2)) = 0 ]; then [ $rc -eq 0 ] && [ "$(cat "$tmp/c$k.out")" = "hello $k" ] || bad+=" exec#$k(exit $rc: $(cat "$tmp/c$k.out" "$tmp/c$k.err" | tr '\n' ' '))"
    else [ $rc -eq 0 ] && json_valid <"$tmp/c$k.out" && grep -qF "\"id\":\"$id\"" "$tmp/c$k.out" && grep -qF '"state":"running"' "$tmp/c$k.out" ||
      bad+=" status#$k(exit $rc: $(cat "$tmp/c$k.out" "$tmp/c$k.err" | tr '\n' ' '))"; fi
  done
  if [ -z "$bad" ]; then ok "concurrency: 10 exec + 10 status on 4 VMs at once all succeed"
  else ko concurrency "$bad"; fi
  bad=""
  for id in "${ids[@]}"; do json_valid <"$root/$id/state.json" || bad+=" $id"; done
  if [ -z "$bad" ]; then ok "concurrency: every state.json is valid JSON afterwards"
  else ko "concurrency: state.json" "invalid:$bad"; fi
fi
for id in "${ids[@]}"; do
  "$sv" stop --grace 0 $id 2>"$tmp/err" || ko "concurrency: stop $id" "$(cat "$tmp/err")"
done

# ---- 5. templating: save, stop, create --from twice, no second boot --------------------------
# Plain (RAM in the migration stream) and --template (RAM in a shared file).
for mode in plain template; do
  tdir="$tmp/saved-$mode"; id=lc-$mode
  flag=(); [ $mode = template ] && flag=(--template)
  if "$sv" create --arch $arch "${flag[@]}" $id >/dev/null 2>"$tmp/err" && "$sv" start $id 2>>"$tmp/err" &&
     boot=$("$sv" exec $id -- cat /proc/sys/kernel/random/boot_id 2>>"$tmp/err") && [ -n "$boot" ]; then
    "$sv" save $id "$tdir" 2>"$tmp/err"; rc=$?
    st=$("$sv" status $id 2>&1)
    if [ $rc -eq 0 ] && [ -d "$tdir" ] && grep -qx 'state: paused' <<<"$st"; then ok "$mode: save writes the directory, leaves the VM paused"
    else ko "$mode: save" "exit $rc: $(cat "$tmp/err") / $st"; fi
    "$sv" stop --grace 0 $id 2>"$tmp/err" || ko "$mode: stop" "$(cat "$tmp/err")"
    for n in 1 2; do
      c=lc-$mode-clone-$n
      "$sv" create --from "$tdir" $c >/dev/null 2>"$tmp/err" && "$sv" start $c 2>>"$tmp/err"; rc=$?
      out=$("$sv" exec $c -- cat /proc/sys/kernel/random/boot_id 2>>"$tmp/err")
      st=$("$sv" status $c 2>&1)
      if [ $rc -eq 0 ] && [ "$out" = "$boot" ] && grep -qx "from: $tdir" <<<"$st"; then
        ok "$mode: clone $n answers exec with the saved VM's boot_id (no boot)"
      else ko "$mode: clone $n" "exit $rc, boot_id '$out' vs '$boot': $(tail -3 "$tmp/err")"; fi
    done
    for n in 1 2; do "$sv" stop --grace 0 lc-$mode-clone-$n >/dev/null 2>&1; done
  else
    ko "$mode: saved VM" "$(tail -3 "$tmp/err")"
    "$sv" delete --force $id >/dev/null 2>&1
  fi
done

# ---- 6 and 7. errors; a paused VM whose QEMU is SIGSTOPped -----------------------------------------
expect_err() {  # name want_rc pattern command...
  local name=$1 want=$2 pat=$3 out rc; shift 3
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq "$want" ] && grep -q "^sandvm: " <<<"$out" && grep -qE -- "$pat" <<<"$out"; then ok "$name"
  else ko "$name" "exit $rc (want $want), stderr '$out'"; fi
}
expect_err "unknown id: exit 1 naming it" 1 'no-such-vm' "$sv" status no-such-vm
expect_err "invalid id ../x: exit 1" 1 'invalid vm id' "$sv" status ../x
expect_err "empty id: exit 1" 1 'invalid vm id' "$sv" start ''
expect_err "65-character id: exit 1" 1 'invalid vm id' "$sv" create --arch $arch "$(printf 'a%.0s' $(seq 65))"
expect_err "bad flag: exit 2" 2 "unknown option '--bogus'" "$sv" status --bogus x
expect_err "bad value: exit 2" 2 '--vcpus' "$sv" create --vcpus 0 x
expect_err "missing operand: exit 2" 2 'missing' "$sv" save x
expect_err "exec bad flag: exit 125" 125 "unknown option" "$sv" exec --bogus x -- true
expect_err "exec unknown VM: exit 125" 125 'no-such-vm' "$sv" exec no-such-vm -- true

id=lc-errors
if "$sv" create --arch $arch $id >/dev/null 2>"$tmp/err" && "$sv" start $id 2>>"$tmp/err"; then
  sj=$("$sv" status --json $id); dir=$(json_field dir <<<"$sj"); pid=$(json_field pid <<<"$sj")
  expect_err "create of an existing id: exit 1" 1 'already exists' "$sv" create --arch $arch $id
  expect_err "start of a running VM: exit 1" 1 "$id" "$sv" start $id
  expect_err "exec of a missing command: exit 127" 127 'no-such-command' "$sv" exec $id -- no-such-command
  "$sv" pause $id
  expect_err "exec on a paused VM: exit 125 naming the state" 125 "$id.*paused" "$sv" exec --timeout 5 $id -- true
  kill -STOP "$pid"
  out=$(timeout 120 "$sv" status $id 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q "^sandvm: .*$id" <<<"$out"; then ok "SIGSTOPped QEMU: status fails naming the VM (QMP deadline)"
  else ko "SIGSTOPped QEMU: status" "exit $rc (124: no answer within 120 s): $out"; fi
  "$sv" stop --force $id 2>"$tmp/err"; rc=$?
  if [ $rc -eq 0 ]; then check_gone "SIGSTOPped QEMU: stop --force cleans up" $id "$dir" "$pid"
  else ko "SIGSTOPped QEMU: stop --force" "exit $rc: $(cat "$tmp/err")"; kill -CONT "$pid" 2>/dev/null; fi
else
  ko "errors VM" "$(tail -3 "$tmp/err")"
fi

# ---- 8. every verb's --help ----------------------------------------------------------------------------
bad=""
for v in create start exec console pause resume save stop delete status list qmp threads pids run; do
  out=$("$sv" $v --help 2>&1); rc=$?
  [ $rc -eq 0 ] && grep -q "^Usage: sandvm $v" <<<"$out" || bad+=" $v(exit $rc)"
done
if [ -z "$bad" ]; then ok "--help of every verb exits 0 with its usage line"
else ko "--help" "$bad"; fi
out=$("$sv" --help); bad=""
for v in create start exec console pause resume save stop delete status list qmp threads pids run; do
  grep -qE "^  $v " <<<"$out" || bad+=" $v"
done
if [ -z "$bad" ] && grep -q 125 <<<"$out"; then ok "sandvm --help lists every verb and the exit codes"
else ko "sandvm --help" "missing:$bad"; fi

left=$(ls -A "$root" 2>/dev/null)
if [ -z "$left" ]; then ok "the state root is empty at the end"
else ko "state root" "left: $left"; fi
[ $skip -gt 0 ] && echo "($skip architectures SKIPPED, see above)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
