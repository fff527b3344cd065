#!/usr/bin/env bash
# `sandvm resize` and shared directories in long-running VMs, checked inside
# the default guests of every arch under TCG, through the CLI alone:
#   x86_64   memory up and down (MemTotal in the guest, QEMU's DIMMs), vCPUs up
#            (online in the guest, query-cpus-fast), vCPU unplug refused under
#            TCG (QEMU 7.2 does not survive it), save refused while resized,
#            limits; virtio-fs and 9p both ways; a sandvm.mount= of the user's own;
#            then a vCPU unplugged with raw QMP leaves the guest (the VM is
#            deleted: QEMU 7.2 would not survive another hotplug)
#   ppc64le  memory up and down, vCPUs up, unplug refused under TCG (and done
#            with raw QMP, as on x86_64); 9p both ways
#   aarch64  resize refused (no CPU hotplug, no memory hotplug without
#            firmware); virtio-fs both ways
#   s390x    vCPUs up (the agent brings them online), unplug and memory
#            refused; 9p both ways
# Uses a private state root under /tmp and removes it.
# Usage: tests/vm/resize_test.sh [BUILDDIR]   Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}
sv="$PWD/$b/sandvm"
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }

tmp=$(mktemp -d /tmp/sandvm-resize.XXXXXX)
export SANDVM_ROOT="$tmp/root"

procs_with() {
  local p c
  for p in /proc/[0-9]*; do
    c=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $c == *"$1"* ]] && echo "${p#/proc/}"
  done
}
cleanup() {
  local d p
  for d in "$SANDVM_ROOT"/*/; do
    [ -d "$d" ] || continue
    "$sv" delete --force "$(basename "$d")" >/dev/null 2>&1
  done
  for p in $(procs_with "$tmp"); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A qemu=([x86_64]=qemu-system-x86_64 [aarch64]=qemu-system-aarch64
                 [ppc64le]=qemu-system-ppc64 [s390x]=qemu-system-s390x)
have_arch() { command -v "${qemu[$1]}" >/dev/null; }

# gx ID CMD...: run in the guest, stdout only
gx() { local id=$1; shift; "$sv" exec "$id" -- "$@" 2>/dev/null; }
memtotal() { gx "$1" awk '/^MemTotal:/ {print $2}' /proc/meminfo; }
online() { gx "$1" cat /sys/devices/system/cpu/online; }
# until ID TEST...: polls TEST (a shell function of ours) for up to 60 s;
# the guest brings what arrives online asynchronously
until_ok() {
  local i
  for i in $(seq 120); do "$@" && return 0; sleep 0.5; done
  return 1
}
vcpu_threads() { "$sv" threads "$1" 2>/dev/null | wc -l; }

# boot ID FLAGS...: create + start; fails the test when it cannot
boot() {
  local id=$1; shift
  if ! "$sv" create --accel tcg "$@" "$id" >/dev/null 2>"$tmp/err" || ! "$sv" start "$id" 2>>"$tmp/err"; then
    ko "$id: create/start" "$(tail -3 "$tmp/err")"; "$sv" delete --force "$id" >/dev/null 2>&1; return 1
  fi
  if [ "$(gx "$id" echo up)" != up ]; then ko "$id: first exec" "the guest did not answer"; return 1; fi
}

# resize_fails NAME ID WANT-SUBSTRING FLAGS...: exit 1, the message, the VM still answers
resize_fails() {
  local name=$1 id=$2 want=$3; shift 3
  local out rc
  out=$("$sv" resize "$@" "$id" 2>&1); rc=$?
  if [ $rc -eq 1 ] && [[ $out == *"$want"* ]] && [ "$(gx "$id" echo alive)" = alive ]; then ok "$name"
  else ko "$name" "exit $rc: $out"; fi
}

# share_both_ways NAME ID HOSTDIR GUESTDIR: a host file is read in the guest,
# a guest file on the host
share_both_ways() {
  local name=$1 id=$2 hd=$3 gd=$4 tok got
  tok="from-host-$RANDOM-$$"
  printf '%s\n' "$tok" >"$hd/host.txt"
  got=$(gx "$id" cat "$gd/host.txt")
  if [ "$got" = "$tok" ]; then ok "$name: a file the host created is read in the guest"
  else ko "$name: host -> guest" "got '$got' (mounts: $(gx "$id" grep -E '9p|virtiofs' /proc/mounts | tr '\n' ';'))"; fi
  tok="from-guest-$RANDOM-$$"
  gx "$id" sh -c 'printf "%s\n" "$1" >"$2/guest.txt" && sync' sh "$tok" "$gd" >/dev/null
  got=$(cat "$hd/guest.txt" 2>/dev/null)
  if [ "$got" = "$tok" ]; then ok "$name: a file the guest wrote is read on the host"
  else ko "$name: guest -> host" "got '$got'"; fi
}

# raw_vcpu_unplug NAME ID CPU-ID ONLINE THREADS: what `resize` refuses under
# TCG, done with raw QMP to see the guest side: the guest releases the vCPU
# (it leaves /sys/devices/system/cpu/online) and QEMU's query-cpus-fast drops
# it. QEMU 7.2 then does not survive another hotplug, so the VM is deleted.
raw_vcpu_unplug() {
  local name=$1 id=$2 cpu=$3 want_online=$4 want_threads=$5 out
  out=$("$sv" qmp "$id" "{\"execute\":\"device_del\",\"arguments\":{\"id\":\"$cpu\"}}" 2>&1)
  gone() { [ "$(online "$id")" = "$want_online" ] && [ "$(vcpu_threads "$id")" = "$want_threads" ]; }
  if [ "$out" = "{}" ] && until_ok gone; then ok "$name: a raw device_del of $cpu: the guest lets it go (online $want_online), QEMU runs $want_threads"
  else ko "$name: raw vCPU unplug" "$out; online $(online "$id"), threads $(vcpu_threads "$id")"; fi
  "$sv" delete --force "$id" >/dev/null 2>&1
}

# ---- x86_64: memory up/down, vCPUs up, virtio-fs -------------------------------------
if have_arch x86_64; then
  id=rs-x86; fs="$tmp/fs-x86"; mkdir -p "$fs"
  if boot $id --arch x86_64 --vcpus 1 --max-vcpus 3 --memory 512 --max-memory 1024 --shared-dir "$fs"; then
    out=$("$sv" resize $id 2>&1)
    if [ "$out" = $'memory: 512 MiB (max 1024 MiB)\nvcpus: 1 (max 3)' ]; then ok "x86_64: resize without flags prints the size"
    else ko "x86_64: resize (size)" "$out"; fi

    m0=$(memtotal $id)
    out=$("$sv" resize --memory 700 $id 2>&1); rc=$?
    mem_grew() { local m; m=$(memtotal $id); [ -n "$m" ] && [ "$m" -ge $((m0 + 250000)) ]; }
    if [ $rc -eq 0 ] && [ "$out" = $'memory: 512 -> 768 MiB (max 1024 MiB)\nvcpus: 1 (max 3)' ]; then
      ok "x86_64: resize --memory 700 plugs a 256 MiB DIMM (128 MiB blocks): 512 -> 768"
    else ko "x86_64: resize --memory" "exit $rc: $out"; fi
    if until_ok mem_grew; then ok "x86_64: the guest's MemTotal rose by the DIMM ($m0 -> $(memtotal $id) kB)"
    else ko "x86_64: MemTotal after memory hotplug" "$m0 -> $(memtotal $id) kB"; fi
    q=$("$sv" qmp $id '{"execute":"query-memory-devices"}' 2>&1)
    if [[ $q == *'"id":"dimmmem0"'* && $q == *'"size":268435456'* && $q == *'"memdev":"/objects/mem0"'* ]]; then
      ok "x86_64: QEMU has the pc-dimm dimmmem0 (268435456 bytes) on backend mem0"
    else ko "x86_64: query-memory-devices" "$q"; fi
    # the agent brought the blocks online as ZONE_MOVABLE (what makes the unplug possible)
    z=$(gx $id sh -c 'for m in /sys/devices/system/memory/memory*; do [ "$(cat $m/state)" = online ] && cat $m/valid_zones; done' | grep -c '^Movable')
    if [ "$z" -ge 2 ]; then ok "x86_64: the hot-plugged memory blocks are online, movable ($z)"
    else ko "x86_64: movable blocks" "$z"; fi

    out=$("$sv" resize --vcpus 3 $id 2>&1); rc=$?
    cpus3() { [ "$(online $id)" = 0-2 ]; }
    if [ $rc -eq 0 ] && [[ $out == *"vcpus: 1 -> 3 (max 3)"* ]]; then ok "x86_64: resize --vcpus 3"
    else ko "x86_64: resize --vcpus 3" "exit $rc: $out"; fi
    if until_ok cpus3; then ok "x86_64: the hot-plugged vCPUs are online in the guest (0-2)"
    else ko "x86_64: vCPUs online" "online: $(online $id)"; fi
    if [ "$(vcpu_threads $id)" = 3 ]; then ok "x86_64: QEMU runs 3 vCPUs (query-cpus-fast)"
    else ko "x86_64: query-cpus-fast" "$("$sv" threads $id 2>&1 | tr '\n' ' ')"; fi

    # QEMU 7.2 under TCG loses the vCPU and later crashes: refused, the VM goes on
    resize_fails "x86_64: vCPU unplug is refused under TCG, naming why; the VM goes on" $id \
      "vCPU unplug on x86_64 needs KVM" --vcpus 1
    if [ "$(vcpu_threads $id)" = 3 ] && [ "$(online $id)" = 0-2 ]; then ok "x86_64: the refused unplug changed nothing"
    else ko "x86_64: after the refused unplug" "$(online $id)"; fi

    resize_fails "x86_64: memory past max_memory is refused, naming it" $id "more than max_memory (1024 MiB)" --memory 2048
    resize_fails "x86_64: vCPUs past max_vcpus are refused, naming it" $id "more than max_vcpus (3)" --vcpus 4
    resize_fails "x86_64: memory below the boot memory is refused" $id "less than the boot memory (512 MiB)" --memory 256
    out=$("$sv" save $id "$tmp/saved" 2>&1); rc=$?
    if [ $rc -eq 1 ] && [[ $out == *"a resize hot-plugged"* ]] && [ ! -e "$tmp/saved" ]; then ok "x86_64: a resized VM cannot be saved (its restore would lack them)"
    else ko "x86_64: save of a resized VM" "exit $rc: $out"; fi

    out=$("$sv" resize --memory 512 $id 2>&1); rc=$?
    mem_back() { local m; m=$(memtotal $id); [ -n "$m" ] && [ "$m" -le $((m0 + 10000)) ]; }
    if [ $rc -eq 0 ] && [[ $out == "memory: 768 -> 512 MiB"* ]]; then ok "x86_64: resize --memory 512 unplugs the DIMM"
    else ko "x86_64: memory unplug" "exit $rc: $out"; fi
    if until_ok mem_back; then ok "x86_64: the guest's MemTotal is back ($(memtotal $id) kB)"
    else ko "x86_64: MemTotal after the unplug" "$(memtotal $id) kB, was $m0"; fi
    q=$("$sv" qmp $id '{"execute":"query-memory-devices"}' 2>&1)
    o=$("$sv" qmp $id '{"execute":"qom-list","arguments":{"path":"/objects"}}' 2>&1)
    if [ "$q" = "[]" ] && [[ $o != *'"mem0"'* ]]; then ok "x86_64: QEMU has no DIMM and no backend left"
    else ko "x86_64: after the memory unplug" "$q / $o"; fi

    j=$("$sv" resize --json $id 2>&1)
    if [ "$j" = '{"memory_mib":512,"max_memory_mib":1024,"vcpus":3,"max_vcpus":3}' ]; then ok "x86_64: resize --json"
    else ko "x86_64: resize --json" "$j"; fi

    share_both_ways "x86_64 virtio-fs" $id "$fs" /mnt/sandvm
    raw_vcpu_unplug "x86_64" $id cpu-2 0-1 2
  fi

  # 9p, and a mount point of the user's own (plus one the guest refuses)
  id=rs-x86-9p; fs="$tmp/fs-x86-9p"; mkdir -p "$fs"
  if boot $id --arch x86_64 --shared-dir "$fs" --shared-fs virtio-9p \
       --append 'sandvm.mount=sandvm:9p:/data sandvm.mount=sandvm:9p:/a/../etc'; then
    share_both_ways "x86_64 9p (sandvm.mount at /data)" $id "$fs" /data
    m=$(gx $id cat /proc/mounts)
    if ! grep -q ' /mnt/sandvm ' <<<"$m" && ! grep -q ' /etc 9p' <<<"$m" && grep -q ' /data 9p' <<<"$m"; then
      ok "x86_64: the user's sandvm.mount replaces the default one; a mount point with .. is refused"
    else ko "x86_64: sandvm.mount" "$(grep 9p <<<"$m")"; fi
    "$sv" stop $id >/dev/null 2>&1
  fi
else
  echo "SKIP x86_64: qemu-system-x86_64 is not installed"
fi

# ---- ppc64le: memory up/down, vCPUs up, 9p ---------------------------------------------------
if have_arch ppc64le; then
  id=rs-ppc; fs="$tmp/fs-ppc"; mkdir -p "$fs"
  if boot $id --arch ppc64le --vcpus 1 --max-vcpus 3 --memory 512 --max-memory 1024 --shared-dir "$fs" --shared-fs virtio-9p; then
    m0=$(memtotal $id)
    out=$("$sv" resize --memory 600 $id 2>&1); rc=$?
    mem_grew() { local m; m=$(memtotal $id); [ -n "$m" ] && [ "$m" -ge $((m0 + 250000)) ]; }
    if [ $rc -eq 0 ] && [[ $out == "memory: 512 -> 768 MiB (max 1024 MiB)"* ]]; then ok "ppc64le: resize --memory 600 plugs a 256 MiB DIMM (256 MiB blocks)"
    else ko "ppc64le: resize --memory" "exit $rc: $out"; fi
    if until_ok mem_grew; then ok "ppc64le: the guest's MemTotal rose ($m0 -> $(memtotal $id) kB)"
    else ko "ppc64le: MemTotal" "$m0 -> $(memtotal $id) kB"; fi

    cpus() { [ "$(online $id)" = "$1" ] && [ "$(vcpu_threads $id)" = "$2" ]; }
    out=$("$sv" resize --vcpus 3 $id 2>&1); rc=$?
    if [ $rc -eq 0 ] && until_ok cpus 0-2 3; then ok "ppc64le: resize --vcpus 3: online 0-2 in the guest, 3 in QEMU"
    else ko "ppc64le: vCPUs up" "exit $rc: $out; online $(online $id), threads $(vcpu_threads $id)"; fi
    # QEMU 7.2 under TCG crashes at the next hotplug after a vCPU unplug: refused
    resize_fails "ppc64le: vCPU unplug is refused under TCG, naming why; the VM goes on" $id \
      "vCPU unplug on ppc64le needs KVM" --vcpus 1

    out=$("$sv" resize --memory 512 $id 2>&1); rc=$?
    mem_back() { local m; m=$(memtotal $id); [ -n "$m" ] && [ "$m" -le $((m0 + 10000)) ]; }
    if [ $rc -eq 0 ] && until_ok mem_back; then ok "ppc64le: resize --memory 512 unplugs the DIMM: MemTotal back"
    else ko "ppc64le: memory unplug" "exit $rc: $out; $(memtotal $id) kB"; fi
    q=$("$sv" qmp $id '{"execute":"query-memory-devices"}' 2>&1)
    if [ "$q" = "[]" ]; then ok "ppc64le: QEMU has no DIMM left"; else ko "ppc64le: DIMMs" "$q"; fi

    share_both_ways "ppc64le 9p" $id "$fs" /mnt/sandvm
    raw_vcpu_unplug "ppc64le" $id cpu-2 0-1 2
  fi
else
  echo "SKIP ppc64le: qemu-system-ppc64 is not installed"
fi

# ---- aarch64: refusals, virtio-fs ---------------------------------------------------------
if have_arch aarch64; then
  id=rs-arm; fs="$tmp/fs-arm"; mkdir -p "$fs"
  if boot $id --arch aarch64 --max-vcpus 2 --shared-dir "$fs"; then
    resize_fails "aarch64: vCPU hotplug is refused, naming why" $id "CPU hotplug is not supported on aarch64" --vcpus 2
    resize_fails "aarch64: memory hotplug without firmware is refused, naming why" $id \
      "memory hotplug is not supported on aarch64 without firmware" --memory 1024
    share_both_ways "aarch64 virtio-fs" $id "$fs" /mnt/sandvm
    "$sv" stop $id >/dev/null 2>&1
  fi
else
  echo "SKIP aarch64: qemu-system-aarch64 is not installed"
fi

# ---- s390x: vCPUs up, refusals, 9p ------------------------------------------------------------
if have_arch s390x; then
  id=rs-s390; fs="$tmp/fs-s390"; mkdir -p "$fs"
  if boot $id --arch s390x --vcpus 1 --max-vcpus 2 --shared-dir "$fs" --shared-fs virtio-9p; then
    out=$("$sv" resize --vcpus 2 $id 2>&1); rc=$?
    cpus2() { [ "$(online $id)" = 0-1 ]; }
    if [ $rc -eq 0 ] && until_ok cpus2 && [ "$(vcpu_threads $id)" = 2 ]; then ok "s390x: resize --vcpus 2: the agent brings it online (0-1), 2 in QEMU"
    else ko "s390x: vCPUs up" "exit $rc: $out; online $(online $id)"; fi
    resize_fails "s390x: vCPU unplug is refused, naming why" $id "vCPU unplug is not supported on s390x" --vcpus 1
    resize_fails "s390x: memory hotplug is refused, naming why" $id "memory hotplug is not supported on s390x" --memory 1024
    share_both_ways "s390x 9p" $id "$fs" /mnt/sandvm
    "$sv" stop $id >/dev/null 2>&1
  fi
else
  echo "SKIP s390x: qemu-system-s390x is not installed"
fi

# ---- the CLI's own checks ----------------------------------------------------------------------
out=$("$sv" resize --memory 0 x 2>&1); rc=$?
if [ $rc -eq 2 ] && [[ $out == *"--memory: expected a number"* ]]; then ok "resize --memory 0 is a usage error"
else ko "resize --memory 0" "exit $rc: $out"; fi
out=$("$sv" resize --vcpus 2 nosuchvm 2>&1); rc=$?
if [ $rc -eq 1 ] && [[ $out == *"vm nosuchvm does not exist"* ]]; then ok "resize of a VM that does not exist fails naming it"
else ko "resize nosuchvm" "exit $rc: $out"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
