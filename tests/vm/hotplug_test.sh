#!/usr/bin/env bash
# Devices hot-plugged into running default guests through the sandvm CLI
# (hotplug, unplug, devices), each checked inside the guest:
#  - x86_64, virtio-blk: a disk image on a PCI bridge slot appears with the
#    image's size, what the guest writes is in the image after unplug, and
#    unplug makes it disappear; a host block device given by major:minor
#    (a loop device), read-only; a tap NIC in a network namespace (guest and
#    host ping each other); a vhost-user-blk disk exported by
#    qemu-storage-daemon; a vhost-user-fs share of virtiofsd; an unplug
#    the guest does not answer (paused VM): a clear timeout, the id kept,
#    the VM usable, the device gone once the guest runs again;
#  - x86_64, virtio-scsi: scsi-hd disks at scsi-id:lun 0:0 and 0:1 (one
#    image named "...,readonly=on x.img", which stays writable);
#  - aarch64: virtio-blk on a PCIe root port;
#  - s390x: virtio-blk-ccw at a free devno.
# Prints INFO lines with timings (hotplug until the guest sees the disk,
# unplug); nothing asserts a timing. Uses a private state root, network
# namespace and loop device, and removes them.
# Usage: tests/vm/hotplug_test.sh [BUILDDIR]   Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
b=${1:-build}
sv="$PWD/$b/sandvm"
pass=0 fail=0 skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
sk() { echo "SKIP $1"; skip=$((skip + 1)); }
info() { echo "INFO $1"; }

tmp=$(mktemp -d /tmp/sandvm-hotplug.XXXXXX)
root="$tmp/root"
export SANDVM_ROOT="$root"
ns="svhp$$"
loopdev="" qsd=""

cleanup() {
  local d
  for d in "$root"/*/; do
    [ -d "$d" ] || continue
    "$sv" delete --force "$(basename "$d")" >/dev/null 2>&1
  done
  [ -n "$qsd" ] && kill "$qsd" 2>/dev/null && wait "$qsd" 2>/dev/null
  [ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s%N; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

declare -A qemu=([x86_64]=qemu-system-x86_64 [aarch64]=qemu-system-aarch64 [s390x]=qemu-system-s390x)
have_arch() { command -v "${qemu[$1]}" >/dev/null; }

# A VM of the default guest of $2 with the extra config keys $3 (JSON members).
new_vm() {  # id arch extra-json
  local id=$1 arch=$2 extra=${3:-} manifest gdir
  manifest=$(guest/build-guest "$arch" 2>"$tmp/err") || { ko "$id: guest" "$(tail -3 "$tmp/err")"; return 1; }
  gdir=${manifest%/*}
  printf '{"arch": "%s", "kernel": "%s", "initrd": "%s"%s}\n' "$arch" "$gdir/kernel" \
    "$gdir/initramfs.cpio.gz" "${extra:+, $extra}" >"$tmp/$id.json"
  if "$sv" create --config "$tmp/$id.json" "$id" >/dev/null 2>"$tmp/err" && "$sv" start "$id" 2>>"$tmp/err" &&
     "$sv" exec "$id" -- true 2>>"$tmp/err"; then return 0; fi
  ko "$id: create/start" "$(tail -3 "$tmp/err")"
  "$sv" delete --force "$id" >/dev/null 2>&1
  return 1
}

# Runs the shell script $2 in VM $1 (arguments after it are $1.. there).
gsh() { local id=$1 script=$2; shift 2; "$sv" exec "$id" -- sh -c "$script" sh "$@"; }

# Waits (up to 15 s) for the virtio disk whose serial is $1 and its /dev node
# (devtmpfs makes it a moment after sysfs shows the disk): "NAME SIZE RO".
# (The quotes matter: a glob that matched nothing when the loop began must
# not match the disk that appeared since.)
find_vd='for i in $(seq 150); do
  for d in /sys/block/vd*; do
    n=${d##*/}
    [ -e "$d" ] && [ "$(cat "$d/serial" 2>/dev/null)" = "$1" ] && [ -b "/dev/$n" ] &&
      { echo "$n" "$(cat "$d/size")" "$(cat "$d/ro")"; exit 0; }
  done; sleep 0.1; done; exit 1'
# Waits for the SCSI disk at target $1 lun $2 ("NAME SIZE RO").
find_sd='for i in $(seq 150); do
  for d in /sys/block/sd*; do
    n=${d##*/}
    [ -e "$d/device" ] && [ -b "/dev/$n" ] || continue
    case $(basename "$(readlink -f "$d/device")") in
      *:0:$1:$2) echo "$n" "$(cat "$d/size")" "$(cat "$d/ro")"; exit 0;;
    esac
  done; sleep 0.1; done; exit 1'
# Waits (up to 15 s) for /sys/block/$1 to be gone.
wait_gone='for i in $(seq 150); do [ -e "/sys/block/$1" ] || exit 0; sleep 0.1; done; exit 1'
# Writes "$2" at the start of the block device /dev/$1 and flushes it there
# (never into a file of that name: dd would create one).
write_mark='[ -b "/dev/$1" ] && printf %s "$2" | dd of="/dev/$1" bs=512 conv=sync,fsync 2>/dev/null && sync'

img_size=$((64 << 20))
new_image() { truncate -s $img_size "$1"; }

# hot-plug $3.. into VM $1; check what the guest sees with finder $2 (args
# after --); write a mark; unplug; check the mark and that it is gone.
# The device's id comes from the hotplug's output line.
disk_cycle() {  # label vm finder finder-args... -- hotplug-args...
  local label=$1 id=$2 finder=$3; shift 3
  local fargs=() img out dev bus addr guest t0 found name size ro mark took
  while [ "$1" != -- ]; do fargs+=("$1"); shift; done; shift
  img=${@: -1}
  t0=$(now)
  out=$("$sv" hotplug "$id" "$@" 2>"$tmp/err") || { ko "$label: hotplug" "$(tail -3 "$tmp/err")"; return 1; }
  read -r dev bus addr guest <<<"$out"
  [ ${#fargs[@]} -eq 0 ] && fargs=("$dev")
  found=$(gsh "$id" "$finder" "${fargs[@]}" 2>&1) || { ko "$label: the guest sees $dev" "not within 15 s: $found"; return 1; }
  took=$(ms_since "$t0")
  read -r name size ro <<<"$found"
  if [ "$size" = $((img_size / 512)) ] && [ "$ro" = 0 ]; then
    ok "$label: the guest sees $dev ($bus $addr, guest $guest) as $name with the image's size"
  else ko "$label: $dev in the guest" "got '$found', want $((img_size / 512)) sectors, writable"; fi
  info "$label: hotplug until the guest sees the disk: $took ms"
  "$sv" devices "$id" >"$tmp/devs" 2>&1
  if grep -qE "^$dev +block +$bus +$addr +$guest +ok +$img\$" "$tmp/devs"; then ok "$label: devices lists $dev"
  else ko "$label: devices" "$(cat "$tmp/devs")"; fi
  mark="sandvm-hotplug-$label-$RANDOM"
  gsh "$id" "$write_mark" "$name" "$mark" 2>"$tmp/err" || ko "$label: guest write" "$(cat "$tmp/err")"
  t0=$(now)
  "$sv" unplug "$id" "$dev" 2>"$tmp/err" || { ko "$label: unplug" "$(tail -3 "$tmp/err")"; return 1; }
  info "$label: unplug (until DEVICE_DELETED and the block node removed): $(ms_since "$t0") ms"
  if [ "$(head -c ${#mark} "$img")" = "$mark" ]; then ok "$label: what the guest wrote is in the image after unplug"
  else ko "$label: image content" "got '$(head -c ${#mark} "$img" | tr -c '[:print:]' .)', want '$mark'"; fi
  if gsh "$id" "$wait_gone" "$name" 2>/dev/null; then ok "$label: unplug makes $name disappear from the guest"
  else ko "$label: unplug" "/sys/block/$name is still there"; fi
  "$sv" devices "$id" >"$tmp/devs" 2>&1
  if ! grep -q "^$dev " "$tmp/devs"; then ok "$label: devices no longer lists $dev"
  else ko "$label: devices after unplug" "$(cat "$tmp/devs")"; fi
}

# ---- x86_64, virtio-blk -------------------------------------------------------------------
if ! have_arch x86_64; then
  sk "x86_64: qemu-system-x86_64 is not installed"
elif new_vm hp-x86 x86_64 '"enable_vhost_user_store": true'; then
  id=hp-x86
  new_image "$tmp/a.img"
  disk_cycle "x86_64 virtio-blk" $id "$find_vd" -- block "$tmp/a.img"

  # a host block device by major:minor (a loop device), read-only
  if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && truncate -s 16M "$tmp/loop.img" &&
     printf 'loop-device-content' | dd of="$tmp/loop.img" conv=notrunc 2>/dev/null &&
     loopdev=$(losetup -f --show "$tmp/loop.img" 2>/dev/null); then
    mm=$(printf '%d:%d' 0x$(stat -c %t "$loopdev") 0x$(stat -c %T "$loopdev"))
    out=$("$sv" hotplug --id lo1 --read-only $id block --dev "$mm" 2>"$tmp/err"); rc=$?
    found=$(gsh $id "$find_vd" lo1 2>&1)
    read -r name size ro <<<"$found"
    head=$(gsh $id 'head -c 19 "/dev/$1"' "$name" 2>&1)
    if [ $rc -eq 0 ] && [ "$size" = 32768 ] && [ "$ro" = 1 ] && [ "$head" = loop-device-content ]; then
      ok "x86_64: block --dev $mm (sysfs: $loopdev) is read-only in the guest, with its size and content"
    else ko "x86_64: block --dev $mm" "exit $rc '$out' $(cat "$tmp/err"); guest: '$found' '$head'"; fi
    gsh $id 'echo x | dd of="/dev/$1" 2>/dev/null' "$name"; rc=$?
    if [ $rc -ne 0 ] && [ "$(head -c 19 "$tmp/loop.img")" = loop-device-content ]; then ok "x86_64: the guest cannot write to a read-only disk"
    else ko "x86_64: read-only" "write exit $rc, image now '$(head -c 19 "$tmp/loop.img")'"; fi
    "$sv" unplug $id lo1 2>"$tmp/err" || ko "x86_64: unplug lo1" "$(cat "$tmp/err")"
    losetup -d "$loopdev" && loopdev=""
  else
    sk "x86_64: block --dev MAJ:MIN (needs root and losetup)"
  fi

  # a tap NIC in a network namespace: sandvm opens the tap there
  if [ "$(id -u)" = 0 ] && ip netns add "$ns" 2>"$tmp/err"; then
    pinger=(ping); command -v ping >/dev/null || pinger=(busybox ping)
    ip -n "$ns" tuntap add dev svtap0 mode tap && ip -n "$ns" addr add 10.211.0.1/24 dev svtap0 &&
      ip -n "$ns" link set svtap0 up && ip -n "$ns" link set lo up
    out=$("$sv" hotplug $id net svtap0 2>&1); rc=$?
    if [ $rc -eq 1 ] && grep -q 'no interface "svtap0" in this network namespace' <<<"$out"; then
      ok "net: the tap of another namespace is not found from this one"
    else ko "net: tap outside the namespace" "exit $rc: $out"; fi
    mac=02:00:00:5a:00:01
    out=$(ip netns exec "$ns" "$sv" hotplug --mac $mac $id net svtap0 2>"$tmp/err"); rc=$?
    if [ $rc -eq 0 ] && [[ $out == "net0 pci-bridge-0 "* ]]; then ok "net: hot-plugged from the namespace: $out"
    else ko "net: hotplug" "exit $rc '$out': $(cat "$tmp/err")"; fi
    # the guest's side: the interface with that MAC, an address, ping the host end
    gout=$(gsh $id 'for i in $(seq 150); do for n in /sys/class/net/*; do
        [ "$(cat $n/address)" = "$1" ] && { d=${n##*/}; ip addr add 10.211.0.2/24 dev $d && ip link set $d up &&
          ping -c 3 -W 3 10.211.0.1 >/dev/null && echo "$d ok"; exit; }; done; sleep 0.1; done; echo none' $mac 2>&1)
    if [[ $gout == *" ok" ]]; then ok "net: the guest (${gout% ok}) pings the host end of the tap"
    else ko "net: guest ping" "$gout"; fi
    if ip netns exec "$ns" "${pinger[@]}" -c 3 -W 3 10.211.0.2 >"$tmp/ping" 2>&1; then
      ok "net: the host end pings the guest"
    else ko "net: host ping" "$(tail -3 "$tmp/ping")"; fi
    "$sv" unplug $id net0 2>"$tmp/err"; rc=$?
    gone=$(gsh $id 'for i in $(seq 150); do grep -qx "$1" /sys/class/net/*/address || { echo gone; exit; }; sleep 0.1; done' $mac)
    if [ $rc -eq 0 ] && [ "$gone" = gone ]; then ok "net: unplug removes the NIC from the guest"
    else ko "net: unplug" "exit $rc: $(cat "$tmp/err") / $gone"; fi
    ip netns del "$ns"
  else
    sk "net: needs root and ip netns ($(cat "$tmp/err" 2>/dev/null))"
  fi

  # vhost-user-blk from qemu-storage-daemon
  if command -v qemu-storage-daemon >/dev/null; then
    new_image "$tmp/vu.img"
    printf 'vhost-user-blk-content' | dd of="$tmp/vu.img" conv=notrunc 2>/dev/null
    qemu-storage-daemon --blockdev driver=file,node-name=file0,filename="$tmp/vu.img" \
      --export type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path="$tmp/vu.sock",writable=on \
      >"$tmp/qsd.log" 2>&1 &
    qsd=$!
    for _ in $(seq 50); do [ -S "$tmp/vu.sock" ] && break; sleep 0.1; done
    out=$("$sv" hotplug $id vhost-user blk "$tmp/vu.sock" 2>"$tmp/err"); rc=$?
    read -r dev _ <<<"$out"
    found=$(gsh $id 'for i in $(seq 150); do for d in /sys/block/vd*; do n=${d##*/}
        [ -e "$d" ] && [ -b "/dev/$n" ] && { echo "$n" "$(cat "$d/size")" "$(head -c 22 "/dev/$n")"; exit; }
        done; sleep 0.1; done' 2>&1)
    if [ $rc -eq 0 ] && [ "$(cut -d' ' -f2- <<<"$found")" = "$((img_size / 512)) vhost-user-blk-content" ]; then
      ok "vhost-user-blk: the qemu-storage-daemon export is readable in the guest ($out)"
    else ko "vhost-user-blk" "exit $rc '$out' $(cat "$tmp/err"); guest: '$found'; qsd: $(tail -2 "$tmp/qsd.log")"; fi
    "$sv" unplug $id "${dev:-vublk0}" 2>"$tmp/err"; rc=$?
    if [ $rc -eq 0 ] && gsh $id "$wait_gone" "${found%% *}"; then ok "vhost-user-blk: unplugged"
    else ko "vhost-user-blk: unplug" "exit $rc: $(cat "$tmp/err")"; fi
    kill "$qsd" 2>/dev/null; wait "$qsd" 2>/dev/null; qsd=""
  else
    sk "vhost-user-blk: qemu-storage-daemon is not installed"
  fi

  # vhost-user-fs from virtiofsd: a file each way
  vfsd=/usr/lib/qemu/virtiofsd
  if [ -x $vfsd ]; then
    mkdir -p "$tmp/share" && echo host-side >"$tmp/share/from-host"
    $vfsd --socket-path="$tmp/fs.sock" -o source="$tmp/share" -o cache=auto >"$tmp/vfsd.log" 2>&1 &
    qsd=$!
    for _ in $(seq 50); do [ -S "$tmp/fs.sock" ] && break; sleep 0.1; done
    out=$("$sv" hotplug $id vhost-user fs "$tmp/fs.sock" --tag hpshare 2>"$tmp/err"); rc=$?
    got=$(gsh $id 'mkdir -p /mnt/hp && mount -t virtiofs hpshare /mnt/hp && cat /mnt/hp/from-host &&
        echo guest-side >/mnt/hp/from-guest && umount /mnt/hp' 2>&1)
    if [ $rc -eq 0 ] && [ "$got" = host-side ] && [ "$(cat "$tmp/share/from-guest" 2>/dev/null)" = guest-side ]; then
      ok "vhost-user-fs: virtiofsd's directory mounted by tag, a file read each way ($out)"
    else ko "vhost-user-fs" "exit $rc '$out' $(cat "$tmp/err"); guest: '$got'; $(tail -2 "$tmp/vfsd.log")"; fi
    "$sv" unplug $id "${out%% *}" 2>"$tmp/err" || ko "vhost-user-fs: unplug" "$(cat "$tmp/err")"
    kill "$qsd" 2>/dev/null; wait "$qsd" 2>/dev/null; qsd=""
  else
    sk "vhost-user-fs: $vfsd is not installed"
  fi

  # an unplug the guest does not answer: the guest is paused
  new_image "$tmp/s.img"
  "$sv" hotplug --id stuck $id block "$tmp/s.img" >/dev/null 2>"$tmp/err" || ko "stuck: hotplug" "$(cat "$tmp/err")"
  found=$(gsh $id "$find_vd" stuck); name=${found%% *}
  out=$("$sv" save $id "$tmp/saved" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q 'hot-plugged device' <<<"$out" && [ ! -e "$tmp/saved" ]; then
    ok "save refuses a VM with a hot-plugged device (its restore would lack it)"
  else ko "save with a device" "exit $rc: $out"; fi
  "$sv" pause $id
  t0=$(now)
  out=$("$sv" unplug --timeout 2 $id stuck 2>&1); rc=$?
  took=$(ms_since "$t0")
  if [ $rc -eq 1 ] && grep -q "device stuck: unplug still pending after 2000 ms" <<<"$out"; then
    ok "unplug from a paused guest: a clear timeout error ($took ms)"
  else ko "unplug timeout" "exit $rc: $out"; fi
  st=$("$sv" status $id 2>&1); devs=$("$sv" devices $id 2>&1)
  if grep -qx 'state: paused' <<<"$st" && grep -qE '^stuck .* unplugging ' <<<"$devs"; then
    ok "after the timeout the VM is as it was and the device is listed unplugging"
  else ko "after the timeout" "$st / $devs"; fi
  out=$("$sv" hotplug --id stuck $id block "$tmp/a.img" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q 'still being unplugged' <<<"$out"; then ok "the id of a pending unplug is not reused"
  else ko "id reuse while pending" "exit $rc: $out"; fi
  "$sv" resume $id
  for _ in $(seq 100); do "$sv" devices $id 2>/dev/null | grep -q '^stuck ' || break; sleep 0.1; done
  devs=$("$sv" devices $id 2>&1)
  if ! grep -q '^stuck ' <<<"$devs" && gsh $id "$wait_gone" "$name"; then
    ok "resumed, the guest releases it: devices finishes the unplug, the disk is gone, exec works"
  else ko "after resume" "$devs"; fi
  out=$("$sv" hotplug --id stuck $id block "$tmp/s.img" 2>&1); rc=$?
  if [ $rc -eq 0 ] && "$sv" unplug $id stuck 2>"$tmp/err"; then ok "the id is free again"
  else ko "id after the unplug completed" "exit $rc: $out $(cat "$tmp/err")"; fi

  # errors, exit codes
  out=$("$sv" hotplug $id block "$tmp/nonexistent.img" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q "block.path: $tmp/nonexistent.img: No such file" <<<"$out"; then ok "a missing image: exit 1 naming it"
  else ko "missing image" "exit $rc: $out"; fi
  out=$("$sv" hotplug --id 'x,drive=y' $id block "$tmp/a.img" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q 'is not a device id' <<<"$out"; then ok "a hostile device id is refused"
  else ko "hostile id" "exit $rc: $out"; fi
  out=$("$sv" hotplug $id floppy x 2>&1); rc=$?
  if [ $rc -eq 2 ] && grep -q "unknown kind 'floppy'" <<<"$out"; then ok "an unknown kind: exit 2"
  else ko "unknown kind" "exit $rc: $out"; fi
  out=$("$sv" unplug $id nosuch 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q 'has no hot-plugged device "nosuch"' <<<"$out"; then ok "unplug of an unknown device: exit 1"
  else ko "unplug unknown" "exit $rc: $out"; fi
  bad=""
  for v in hotplug unplug devices; do
    "$sv" $v --help 2>&1 | grep -q "^Usage: sandvm $v" || bad+=" $v"
  done
  if [ -z "$bad" ]; then ok "--help of hotplug, unplug, devices"
  else ko "--help" "$bad"; fi
  out=$("$sv" devices $id 2>&1)
  if [ "$out" = "$(head -1 <<<"$out")" ] && [[ $out == ID* ]]; then ok "devices: nothing left attached"
  else ko "devices at the end" "$out"; fi
  "$sv" stop $id 2>"$tmp/err" || ko "stop $id" "$(cat "$tmp/err")"
fi

# ---- x86_64, virtio-scsi --------------------------------------------------------------------
if have_arch x86_64 && new_vm hp-scsi x86_64 '"block_device_driver": "virtio-scsi"'; then
  # the second image's name would add an option if it were ever put in a QEMU option string
  s1="$tmp/s1,readonly=on x.img"
  new_image "$tmp/s0.img"; new_image "$s1"
  out=$("$sv" hotplug --id keep hp-scsi block "$tmp/s0.img" 2>&1)
  if [ "$out" = "keep scsi0.0 0:0 0:0" ]; then ok "virtio-scsi: the first disk is scsi-hd 0:0 on scsi0.0"
  else ko "virtio-scsi: first disk" "$out"; fi
  disk_cycle "x86_64 virtio-scsi" hp-scsi "$find_sd" 0 1 -- block "$s1"
  "$sv" unplug hp-scsi keep 2>"$tmp/err" || ko "virtio-scsi: unplug keep" "$(cat "$tmp/err")"
  "$sv" stop hp-scsi 2>"$tmp/err" || ko "stop hp-scsi" "$(cat "$tmp/err")"
fi

# ---- aarch64 virt: onto a PCIe root port (its PCI bridges cannot hot-plug) ----------------------
if ! have_arch aarch64; then
  sk "aarch64: qemu-system-aarch64 is not installed"
elif new_vm hp-arm aarch64 '"pcie_root_port": 1'; then
  new_image "$tmp/r.img"
  disk_cycle "aarch64 virtio-blk" hp-arm "$find_vd" -- block "$tmp/r.img"
  "$sv" stop hp-arm 2>"$tmp/err" || ko "stop hp-arm" "$(cat "$tmp/err")"
fi

# ---- s390x, virtio-blk-ccw --------------------------------------------------------------------
if ! have_arch s390x; then
  sk "s390x: qemu-system-s390x is not installed"
elif new_vm hp-s390x s390x; then
  new_image "$tmp/z.img"
  disk_cycle "s390x virtio-blk-ccw" hp-s390x "$find_vd" -- block "$tmp/z.img"
  "$sv" stop hp-s390x 2>"$tmp/err" || ko "stop hp-s390x" "$(cat "$tmp/err")"
fi

left=$(ls -A "$root" 2>/dev/null)
if [ -z "$left" ]; then ok "the state root is empty at the end"
else ko "state root" "left: $left"; fi
[ $skip -gt 0 ] && echo "($skip SKIPPED, see above)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
