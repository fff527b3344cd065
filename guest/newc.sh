# newc.sh: write cpio "newc" archives (the format the kernel's initramfs unpacker
# reads) from bash + coreutils, so neither the cpio package nor root (for device
# nodes) is needed. Sourced by build-guest and make-job-cpio.
#
#   newc_open FILE              start an archive (truncates FILE)
#   newc_dir NAME [MODE]        directory (MODE octal, default 755)
#   newc_file NAME MODE SRC     regular file with the bytes of file SRC
#   newc_str NAME MODE STRING   regular file with exactly the bytes of STRING
#   newc_symlink NAME TARGET
#   newc_chardev NAME MODE MAJOR MINOR
#   newc_close                  write the TRAILER!!! entry
#
# NAME is the path inside the archive without a leading "/" (e.g. "sandvm/argv/0").
# Parents must be added before children. Every entry is owned by 0:0, mtime 0,
# nlink 1 (1 + subdirs is not needed by the kernel), inode numbers are unique.
# Byte lengths are counted with LC_ALL=C, which the callers set.

NEWC_OUT=
NEWC_INO=0

# _newc_pad N: write the zero bytes that pad N bytes to a multiple of 4
# (every entry starts 4-aligned, so padding each part by its own length is enough)
_newc_pad() {
  local n=$(( (4 - ($1 % 4)) % 4 ))
  case $n in
    1) printf '\0' ;;
    2) printf '\0\0' ;;
    3) printf '\0\0\0' ;;
  esac
}

# _newc_hdr NAME MODE(decimal) SIZE RDEVMAJ RDEVMIN
_newc_hdr() {
  local name=$1 mode=$2 size=$3 rmaj=$4 rmin=$5
  local namesize=$(( ${#name} + 1 ))
  NEWC_INO=$((NEWC_INO + 1))
  if [ "$name" = "TRAILER!!!" ]; then NEWC_INO=0; fi
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
    "$NEWC_INO" "$mode" 0 0 1 0 "$size" 0 0 "$rmaj" "$rmin" "$namesize" 0 "$name"
  _newc_pad $((110 + namesize))
}

newc_open() {
  NEWC_OUT=$1 NEWC_INO=0
  : >"$NEWC_OUT"
}

newc_dir() {
  _newc_hdr "$1" $(( 8#040000 | 8#${2:-755} )) 0 0 0 >>"$NEWC_OUT"
}

newc_file() {
  local size
  size=$(stat -L -c %s -- "$3")
  {
    _newc_hdr "$1" $(( 8#100000 | 8#$2 )) "$size" 0 0
    cat -- "$3"
    _newc_pad "$size"
  } >>"$NEWC_OUT"
}

newc_str() {
  local size=${#3}
  {
    _newc_hdr "$1" $(( 8#100000 | 8#$2 )) "$size" 0 0
    printf '%s' "$3"
    _newc_pad "$size"
  } >>"$NEWC_OUT"
}

newc_symlink() {
  local size=${#2}
  {
    _newc_hdr "$1" $(( 8#120777 )) "$size" 0 0
    printf '%s' "$2"
    _newc_pad "$size"
  } >>"$NEWC_OUT"
}

newc_chardev() {
  _newc_hdr "$1" $(( 8#020000 | 8#$2 )) 0 "$3" "$4" >>"$NEWC_OUT"
}

newc_close() {
  _newc_hdr "TRAILER!!!" 0 0 0 0 >>"$NEWC_OUT"
}
