#!/usr/bin/env bash
# Crash consistency of state.json, with strace fault injection.
#
# 1. The state-save path (sv_vm_state_save -> sv_write_file_atomic), driven by
#    tests/vm/state_writer over a VM holding state A that saves state B, on
#    both of its code paths (O_TMPFILE + linkat, and a named temporary file):
#    - killed (SIGKILL) on entry to every syscall of the save, and once after
#      the last: state.json must load and be byte for byte A before the
#      rename ran and B after it; the only other entries allowed in the VM
#      directory are .sv-tmp.* temporaries; a new save then works (the lock
#      died with the process), and removing the VM sweeps every leftover;
#    - ENOSPC and EIO injected into every file syscall of the save: the error
#      must reach the user (exit 1, one line naming state.json and the errno)
#      with state.json still A -- or B when only the final directory fsync
#      failed -- and no temporary left behind; errors of close() and
#      getrandom() may be absorbed (then exit 0 and B). Plus the fallbacks:
#      EINTR on write, EOPNOTSUPP on the O_TMPFILE open, EPERM on linkat.
# 2. The real CLI, `sandvm --root R create`:
#    - killed at every syscall from exec to exit: the VM is either absent or
#      complete (status reads it, only its lock and state.json inside), a new
#      create then succeeds or says it exists, list works, and leftover hidden
#      directories are swept by a later create once a minute old (exec.lock,
#      which create makes once the VM is in place, may be missing: start
#      makes it again);
#    - ENOSPC and EIO injected into every syscall once the state root is
#      touched: exit 0 with a complete VM, or exit 1 with a "sandvm: " message
#      carrying the errno, the VM absent (or complete, when only the fsync
#      after its rename into place failed) and no hidden leftovers.
#
# Usage: tests/vm/state_crash_test.sh [BUILDDIR]   Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
b=${1:-build}
W="$b/tests/state_writer"
SV="$b/sandvm"
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

if ! command -v strace >/dev/null; then
  ko strace "strace is not installed (tools/deps test installs it)"
  echo "$pass passed, $fail failed"; exit 1
fi
for f in "$W" "$SV"; do
  [ -x "$f" ] || { ko build "$f is missing (build with -Dtests=true)"; echo "$pass passed, $fail failed"; exit 1; }
done
# The names strace reports for errnos, as the library words them.
declare -A errtext=([ENOSPC]="No space left on device" [EIO]="Input/output error")

tmp=$(mktemp -d /tmp/sandvm-state-crash.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ID=vm1

# Prints "INDEX NAME N" for each syscall line of a strace -f log: NAME is the
# N-th call of that syscall in the log, which is what strace's when=N counts.
# With BEGIN/END: only the lines after the one holding BEGIN up to the one
# holding END (included).
syscalls() { # LOG [BEGIN END]
  awk -v b="${2:-}" -v e="${3:-}" '
    { l = $0; sub(/^[0-9]+ +/, "", l)
      if (!match(l, /^[a-z_0-9]+\(/)) next
      name = substr(l, 1, RLENGTH - 1); n[name]++; i++
      if (b == "") { print i, name, n[name]; next }
      if (on) print i, name, n[name]
      if (index(l, b)) on = 1
      if (e != "" && index(l, e)) on = 0 }' "$1"
}

# ---- 1. the save path, through state_writer ----------------------------------

fresh() { # DIR: a root holding VM $ID with state A
  rm -rf "$1"; mkdir -p "$1"
  "$W" init "$1/root" "$ID" || { echo "state_writer init failed" >&2; return 1; }
}

kills=0 leftovers=0 injections=0
for mode in tmpfile named; do
  flag=(); [ $mode = named ] && flag=(--named)
  fresh "$tmp/s" || { ko "setup" "state_writer init"; break; }
  strace -f -o "$tmp/trace" "$W" save "$tmp/s/root" "$ID" "${flag[@]}" >/dev/null 2>&1
  mapfile -t points < <(syscalls "$tmp/trace" '"sv-save-begin"' '"sv-save-end"')
  # the rename that makes B the state: before it runs A, after it B
  rename_at=$(printf '%s\n' "${points[@]}" | awk '$2 ~ /^rename/ {print $1; exit}')
  if [ ${#points[@]} -lt 5 ]; then
    ko "$mode: trace" "no save path between the markers in $(wc -l <"$tmp/trace") trace lines"
    continue
  fi
  if [ -z "$rename_at" ]; then # not atomic: the kills below will say how
    ko "$mode: trace" "no rename in the save path"
    rename_at=${points[-1]%% *}
  fi
  echo "# $mode save path: $(printf '%s\n' "${points[@]}" | awk '{printf "%s%s", sep, $2; sep=" "}')"

  for p in "${points[@]}"; do
    read -r idx name n <<<"$p"
    what="$mode: SIGKILL on entry to $name #$n (syscall $idx)"
    fresh "$tmp/s" || { ko "$what" "setup"; continue; }
    strace -f -o /dev/null -e inject="$name:signal=SIGKILL:when=$n" \
      "$W" save "$tmp/s/root" "$ID" "${flag[@]}" >/dev/null 2>"$tmp/err"
    rc=$?
    kills=$((kills + 1))
    want=A; [ "$idx" -gt "$rename_at" ] && want=B
    out=$("$W" check "$tmp/s/root" "$ID" 2>&1); crc=$?
    got=$(head -1 <<<"$out")
    extra=$(sed -n 's/^extra //p' <<<"$out")
    bad_extra=$(grep -v '^\.sv-tmp\.state\.json\.' <<<"$extra" | grep . || true)
    [ -n "$extra" ] && leftovers=$((leftovers + 1))
    if [ $rc -ne 137 ]; then ko "$what" "not killed (exit $rc): the syscall sequence changed?"
    elif [ $crc -ne 0 ]; then ko "$what" "state.json unreadable or torn: $out"
    elif [ "$got" != "$want" ]; then ko "$what" "state.json is $got, expected $want"
    elif [ -n "$bad_extra" ]; then ko "$what" "unexpected entries: $bad_extra"
    elif ! "$W" save "$tmp/s/root" "$ID" "${flag[@]}" 2>"$tmp/err" ||
         [ "$("$W" check "$tmp/s/root" "$ID" | head -1)" != B ]; then
      ko "$what" "the next save failed: $(cat "$tmp/err")"
    elif ! "$W" remove "$tmp/s/root" "$ID" 2>"$tmp/err"; then
      ko "$what" "removing the VM left something: $(cat "$tmp/err")"
    else ok "$what: state.json is $want${extra:+, leftover ${extra//$'\n'/ } swept by removal}"
    fi
  done

  # errors: every file syscall of the save path, ENOSPC and EIO
  for p in "${points[@]}"; do
    read -r idx name n <<<"$p"
    case $name in
      openat|write|fchmod|fsync|fdatasync|linkat|rename|renameat|renameat2) must_fail=1 ;;
      close|getrandom|unlinkat) must_fail=0 ;;
      *) continue ;;
    esac
    [ "$idx" -eq "${points[-1]%% *}" ] && continue # the end marker
    for e in ENOSPC EIO; do
      what="$mode: $e on $name #$n (syscall $idx)"
      fresh "$tmp/s" || { ko "$what" "setup"; continue; }
      strace -f -o /dev/null -e inject="$name:error=$e:when=$n" \
        "$W" save "$tmp/s/root" "$ID" "${flag[@]}" >/dev/null 2>"$tmp/err"
      rc=$?
      injections=$((injections + 1))
      err=$(cat "$tmp/err")
      out=$("$W" check "$tmp/s/root" "$ID" 2>&1); crc=$?
      got=$(head -1 <<<"$out")
      extra=$(sed -n 's/^extra //p' <<<"$out")
      want=A; [ "$idx" -gt "$rename_at" ] && want=B
      head="state_writer: vm $ID: writing $tmp/s/root/$ID/state.json: "
      if [ $crc -ne 0 ]; then ko "$what" "state.json unreadable or torn: $out"
      elif [ -n "$extra" ]; then ko "$what" "left behind: $extra"
      elif [ $rc -eq 0 ]; then
        if [ "$must_fail" = 1 ]; then ko "$what" "exit 0: the error was lost"
        elif [ "$got" != B ]; then ko "$what" "exit 0 but state.json is $got"
        else ok "$what: absorbed, exit 0, state.json is B"; fi
      elif [ $rc -ne 1 ]; then ko "$what" "exit $rc, expected 1: $err"
      elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || [[ "$err" != "$head"*": ${errtext[$e]}" ]]; then
        ko "$what" "the error does not name state.json and the errno: $err"
      elif [ "$got" != "$want" ]; then ko "$what" "state.json is $got, expected $want"
      else ok "$what: exit 1, '${err#"$head"}', state.json is $want"
      fi
    done
  done
done

# fallbacks that must stay invisible: EINTR on write is retried; no O_TMPFILE
# (EOPNOTSUPP) falls back to a named temporary; a linkat refused with EPERM
# retries through /proc
fresh "$tmp/s" && strace -f -o "$tmp/trace" "$W" save "$tmp/s/root" "$ID" >/dev/null 2>&1
mapfile -t points < <(syscalls "$tmp/trace" '"sv-save-begin"' '"sv-save-end"')
for spec in "write:EINTR" "openat:EOPNOTSUPP" "linkat:EPERM"; do
  name=${spec%%:*} e=${spec#*:}
  n=$(printf '%s\n' "${points[@]}" | awk -v s="$name" '$2 == s {print $3; exit}')
  what="fallback: $e on $name #$n"
  fresh "$tmp/s" || { ko "$what" "setup"; continue; }
  strace -f -o "$tmp/trace2" -e inject="$name:error=$e:when=$n" \
    "$W" save "$tmp/s/root" "$ID" >/dev/null 2>"$tmp/err"
  rc=$?
  injections=$((injections + 1))
  out=$("$W" check "$tmp/s/root" "$ID" 2>&1)
  if ! grep -q "$e (.*(INJECTED)" "$tmp/trace2"; then ko "$what" "strace did not inject it"
  elif [ $rc -ne 0 ] || [ "$out" != B ]; then ko "$what" "exit $rc, check: $out, $(cat "$tmp/err")"
  else ok "$what: exit 0, state.json is B, nothing left behind"; fi
done

# ---- 2. the CLI: sandvm create --------------------------------------------------

printf 'kernel' >"$tmp/kernel"; printf 'initrd' >"$tmp/initrd"
cargs=(create --arch x86_64 --kernel "$tmp/kernel" --initrd "$tmp/initrd")
create() { "$SV" --root "$1" "${cargs[@]}" "$2"; } # ROOT ID
# The VM $ID under ROOT is absent or complete; prints "absent" or "present".
vm_whole() { # ROOT
  local r=$1
  if [ ! -e "$r/$ID" ]; then echo absent; return 0; fi
  local ents; ents=$(ls -A "$r/$ID" | sort | tr '\n' ' ')
  # exec.lock comes after the directory is in place (sv_vm_start makes it too)
  case $ents in "lock state.json "|"exec.lock lock state.json ") ;; *) echo "holds: $ents"; return 1 ;; esac
  "$SV" --root "$r" status "$ID" 2>&1 | grep -qx 'state: created' || { echo "status: $("$SV" --root "$r" status "$ID" 2>&1)"; return 1; }
  echo present
}
hidden() { ls -A "$1" 2>/dev/null | grep '^\.' || true; } # ROOT

rm -rf "$tmp/c"; mkdir -p "$tmp/c"
strace -f -o "$tmp/ctrace" "$SV" --root "$tmp/c/root" "${cargs[@]}" "$ID" >/dev/null 2>&1
mapfile -t cpoints < <(syscalls "$tmp/ctrace")
renamed_at=$(printf '%s\n' "${cpoints[@]}" | awk '$2 == "renameat2" {print $1; exit}')
rooted_at=$(grep -n "\"$tmp/c/root\"" "$tmp/ctrace" | head -1 | cut -d: -f1)
if [ ${#cpoints[@]} -lt 20 ] || [ -z "$renamed_at" ] || [ -z "$rooted_at" ]; then
  ko "create: trace" "no renameat2 into place or no access to the root in $(wc -l <"$tmp/ctrace") lines"
else
  ckills=0 swept=0
  for p in "${cpoints[@]:1}"; do # not the execve strace starts it with
    read -r idx name n <<<"$p"
    what="create: SIGKILL on entry to $name #$n (syscall $idx of ${#cpoints[@]})"
    r="$tmp/c/root"; rm -rf "$tmp/c"; mkdir -p "$tmp/c"
    strace -f -o /dev/null -e inject="$name:signal=SIGKILL:when=$n" "$SV" --root "$r" "${cargs[@]}" "$ID" >/dev/null 2>&1
    rc=$?
    ckills=$((ckills + 1)); kills=$((kills + 1))
    [ "$name" = exit_group ] && [ $rc -eq 0 ] && rc=137 # already done: nothing to kill
    state=$(vm_whole "$r"); vrc=$?
    want=absent; [ "$idx" -gt "$renamed_at" ] && want=present
    left=$(hidden "$r")
    if [ $rc -ne 137 ]; then ko "$what" "not killed (exit $rc)"
    elif [ $vrc -ne 0 ]; then ko "$what" "VM half there: $state"
    elif [ "$state" != "$want" ]; then ko "$what" "VM $state, expected $want"
    elif ! "$SV" --root "$r" list >/dev/null 2>"$tmp/err" && [ -d "$r" ]; then ko "$what" "list fails: $(cat "$tmp/err")"
    else
      again=$(create "$r" "$ID" 2>&1); arc=$?
      if [ "$want" = absent ] && { [ $arc -ne 0 ] || [ "$(vm_whole "$r")" != present ]; }; then
        ko "$what" "create again failed (exit $arc): $again"
      elif [ "$want" = present ] && { [ $arc -ne 1 ] || [[ "$again" != *"vm $ID already exists"* ]]; }; then
        ko "$what" "create again: exit $arc, '$again'"
      elif [ -n "$left" ]; then
        # a crash's hidden directory: swept by a create once a minute old
        while read -r h; do touch -h -d '-2 minutes' "$r/$h"; done <<<"$left"
        if ! create "$r" vm2 >/dev/null 2>"$tmp/err"; then ko "$what" "create vm2: $(cat "$tmp/err")"
        elif [ -n "$(hidden "$r")" ]; then ko "$what" "leftover not swept: $(hidden "$r")"
        else swept=$((swept + 1)); ok "$what: VM $state, leftover ${left//$'\n'/ } swept by a later create"; fi
      else ok "$what: VM $state"
      fi
    fi
  done
  echo "# create: $ckills kill points, $swept left a hidden directory (swept)"

  for p in "${cpoints[@]}"; do
    read -r idx name n <<<"$p"
    [ "$idx" -lt "$rooted_at" ] && continue
    # the file syscalls; those that write the VM into being must fail it
    case $name in
      mkdir|mkdirat|fchmod|fsync|fdatasync|linkat|rename|renameat|renameat2|flock) must_fail=1 ;;
      openat|write|close|newfstatat|getdents64|unlinkat|getrandom) must_fail=0 ;;
      *) continue ;;
    esac
    for e in ENOSPC EIO; do
      what="create: $e on $name #$n (syscall $idx)"
      r="$tmp/c/root"; rm -rf "$tmp/c"; mkdir -p "$tmp/c"
      strace -f -o /dev/null -e inject="$name:error=$e:when=$n" "$SV" --root "$r" "${cargs[@]}" "$ID" >/dev/null 2>"$tmp/err"
      rc=$?
      injections=$((injections + 1))
      err=$(cat "$tmp/err")
      state=$(vm_whole "$r"); vrc=$?
      left=$(hidden "$r")
      if [ $vrc -ne 0 ]; then ko "$what" "VM half there: $state"
      elif [ -n "$left" ]; then ko "$what" "left behind: $left"
      elif [ $rc -eq 0 ]; then
        if [ "$must_fail" = 1 ]; then ko "$what" "exit 0: the error was lost"
        elif [ "$state" = present ]; then ok "$what: absorbed, exit 0, VM complete"
        else ko "$what" "exit 0 without the VM"; fi
      elif [ $rc -ne 1 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || [[ "$err" != "sandvm: "*"${errtext[$e]}"* ]]; then
        ko "$what" "exit $rc, error does not carry the errno: $err"
      elif [ "$state" = present ] && [ "$idx" -le "$renamed_at" ]; then
        ko "$what" "failed, yet the VM exists"
      else ok "$what: exit 1, VM $state: ${err#sandvm: }"
      fi
    done
  done
fi

echo "# $kills kill points, $injections injected errors; $leftovers save-path kills left a temporary file (removal swept each)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
