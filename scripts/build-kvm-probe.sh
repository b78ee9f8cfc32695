#!/bin/sh
# Assembles the accel stage's probe guest and prints the ELF image as base64, as committed in
# src/vm/probe/kvm-probe.ts: src/vm/probe/kvm-probe.S for amd64 (the default), kvm-probe-arm64.S for arm64.
# arm64 needs an aarch64 assembler: binutils-aarch64-linux-gnu on any host, or the native binutils on arm64.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-amd64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$arch" in
  amd64)
    as --32 -o "$tmp/probe.o" "$here/src/vm/probe/kvm-probe.S"
    ld -m elf_i386 -Ttext=0x100000 -s --build-id=none -o "$tmp/probe.elf" "$tmp/probe.o"
    ;;
  arm64)
    if command -v aarch64-linux-gnu-as >/dev/null 2>&1; then
      prefix=aarch64-linux-gnu-
    elif [ "$(uname -m)" = aarch64 ]; then
      prefix=
    else
      echo "build-kvm-probe: no aarch64 assembler (install binutils-aarch64-linux-gnu)" >&2
      exit 1
    fi
    "${prefix}as" -o "$tmp/probe.o" "$here/src/vm/probe/kvm-probe-arm64.S"
    # One RWX segment on purpose (the probe writes its page tables and stack next to its code): say so to ld.
    quiet=
    if "${prefix}ld" --help | grep -q -- --no-warn-rwx-segments; then quiet=--no-warn-rwx-segments; fi
    "${prefix}ld" -n $quiet -Ttext=0x40080000 -s --build-id=none -o "$tmp/probe.elf" "$tmp/probe.o"
    ;;
  *)
    echo "build-kvm-probe: unknown architecture '$arch' (amd64 or arm64)" >&2
    exit 2
    ;;
esac
base64 -w 0 "$tmp/probe.elf"
