#!/bin/sh
# Runs inside the booted test VM, as root, in the host's share (debian-vm-ci's lifecycle stage):
# the built packages' life cycle on the booted system, the checks piuparts makes in a chroot.
#   1. a list of the file system's files (what the system had before)
#   2. install the release's own version of the packages first, when the archive has one
#   3. install (or upgrade to) the built packages
#   4. remove them, then purge them (with what they pulled in)
#   5. a list of the files again: what is new and owned by no package was left behind; what is gone
#      was removed by the packages' scripts
#
# Usage: lifecycle-in-guest.sh
# apt already goes through the run's proxy (src/vm/guest-job.ts configures it before the script starts).
# Input in the share: lifecycle-input.tar (debs/ the built packages).
# Output in the share: lifecycle-out.steps (one line per step: name<TAB>exit status<TAB>what it did),
# lifecycle-out.leftovers, lifecycle-out.missing (one path per line), lifecycle-out.script-errors
# (dpkg's lines about failed maintainer scripts).
# Exit status: 0 when every step ran (its verdicts are in the files), 100-102 when the set-up failed.
set -u
exec 2>&1
work=/var/tmp/debian-vm-ci-lifecycle
share=$PWD
export DEBIAN_FRONTEND=noninteractive
say() { echo "debian-vm-ci: $*"; }

rm -rf "$work"
mkdir -p "$work"
: > "$share/lifecycle-out.steps"
: > "$share/lifecycle-out.script-errors"

tar -x -f lifecycle-input.tar -C "$work" || { say "FAILED: unpacking the packages"; exit 102; }
set -- "$work"/debs/*.deb
[ -e "$1" ] || { say "FAILED: no .deb files in the input"; exit 102; }
pkgs=""
for deb in "$@"; do pkgs="$pkgs $(dpkg-deb -f "$deb" Package)"; done

say "apt-get update"
apt-get update -q || { say "FAILED: apt-get update exited with status $?"; exit 100; }

# What changes under these is the package manager's and the system's own bookkeeping, not the package's
# (the same kind of list piuparts ignores).
snapshot() {
  find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
    -o -path /var/cache -o -path /var/log -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/systemd \
    -o -path /var/lib/ucf -o -path /var/lib/dhcp -o -path /etc/ld.so.cache -o -path /etc/apt/apt.conf.d/99zz-debian-vm-ci-proxy \
    -o -path /root/.cache -o -path /var/lib/private -o -path /etc/machine-id \) -prune -o -print | LC_ALL=C sort
}

# step NAME DESCRIPTION COMMAND...: runs it, records its status, keeps dpkg's maintainer script errors.
step() {
  name=$1 what=$2
  shift 2
  say "$name: $what"
  "$@" > "$work/$name.out" 2>&1
  status=$?
  cat "$work/$name.out"
  grep -E 'script subprocess .*returned error exit status|dpkg: error processing' "$work/$name.out" |
    sed "s/^/$name: /" >> "$share/lifecycle-out.script-errors"
  printf '%s\t%s\t%s\n' "$name" "$status" "$what" >> "$share/lifecycle-out.steps"
  say "$name: exit status $status"
  return "$status"
}

snapshot > "$work/before"
say "$(wc -l < "$work/before") paths before the packages"

previous=""
for p in $pkgs; do
  candidate=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^  Candidate: //p')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then previous="$previous $p=$candidate"; fi
done
ok=1
if [ -n "$previous" ]; then
  # shellcheck disable=SC2086 # a list of package=version words
  step install-previous "install the release's version:$previous" apt-get install -y -q $previous || ok=0
  if [ "$ok" = 1 ]; then
    step upgrade "upgrade to the built packages:$pkgs" apt-get install -y -q --allow-downgrades "$@" || ok=0
  fi
else
  step install "install the built packages (the release has none of them):$pkgs" apt-get install -y -q "$@" || ok=0
fi
if [ "$ok" = 1 ]; then
  # shellcheck disable=SC2086 # a list of package names
  step remove "remove:$pkgs" apt-get remove -y -q $pkgs || ok=0
fi
# apt cannot purge what only a local .deb provided once it is removed ("Unable to locate package", measured):
# dpkg purges the packages, apt then purges what they pulled in.
# shellcheck disable=SC2317 # called through step "$@"
purge_all() {
  dpkg --purge "$@" && apt-get autoremove --purge -y -q
}
if [ "$ok" = 1 ]; then
  # shellcheck disable=SC2086 # a list of package names
  step purge "purge, with what they pulled in:$pkgs" purge_all $pkgs || ok=0
fi

snapshot > "$work/after"
# Every path some installed package owns (its .list files); what is new and in none of them was left behind.
LC_ALL=C sort -u /var/lib/dpkg/info/*.list > "$work/owned"
LC_ALL=C comm -13 "$work/before" "$work/after" | LC_ALL=C comm -23 - "$work/owned" > "$share/lifecycle-out.leftovers"
LC_ALL=C comm -23 "$work/before" "$work/after" > "$share/lifecycle-out.missing"
say "$(wc -l < "$share/lifecycle-out.leftovers") paths left behind, $(wc -l < "$share/lifecycle-out.missing") paths gone"
sync
exit 0
