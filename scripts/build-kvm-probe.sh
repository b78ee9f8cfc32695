#!/bin/sh
# Assembles src/vm/probe/kvm-probe.S and prints the ELF image as base64, as committed in src/vm/probe/kvm-probe.ts.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --32 -o "$tmp/probe.o" "$here/src/vm/probe/kvm-probe.S"
ld -m elf_i386 -Ttext=0x100000 -s --build-id=none -o "$tmp/probe.elf" "$tmp/probe.o"
base64 -w 0 "$tmp/probe.elf"
