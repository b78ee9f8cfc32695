#!/bin/sh
# Runs inside the booted test VM, as root, in the host's share (debian-vm-ci's upgrade stage): the
# release upgrade the Debian release notes describe, without questions.
#   1. point every apt source of FROM (and FROM-updates, FROM-security, FROM-backports) at TO
#   2. apt-get update; apt-get upgrade --without-new-pkgs; apt-get full-upgrade
#      (configuration files the system changed are kept: --force-confdef --force-confold)
#   3. dpkg --audit: no package may be left unpacked or half configured
#   4. the newest installed kernel; with BOOT=direct its kernel and initrd are copied into the share,
#      for QEMU to boot the upgraded system with (the image has no boot loader)
#
# Usage: upgrade-in-guest.sh FROM TO BOOT   (BOOT: direct or disk)
# apt already goes through the run's proxy (src/vm/guest-job.ts configures it before the script starts).
# Output in the share: upgrade-out.sources (the apt sources after the change), upgrade-out.before and
# upgrade-out.after (package<TAB>version of every installed package), upgrade-out.audit (dpkg --audit),
# upgrade-out.kernel (the version), upgrade-out.vmlinuz and upgrade-out.initrd (with BOOT=direct).
# Exit status: 0 when the upgrade went through; 100 apt-get update failed, 101 no apt source names FROM,
# 102 the upgrade failed, 103 packages are left half installed, 104 no kernel to boot.
set -u
exec 2>&1
from=$1 to=$2 boot=$3
share=$PWD
export DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_MODE=l
say() { echo "debian-vm-ci: $*"; }
apt_get() {
  apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# A suite field names the release when it is FROM or FROM-<pocket> (bookworm-security, bookworm-updates).
# One-line sources: "deb [options] URI SUITE COMPONENTS...".
rewrite_list() {
  awk -v from="$from" -v to="$to" '
    /^[ \t]*deb(-src)?[ \t]/ {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      i++
      if ($i == from || index($i, from "-") == 1) { $i = to substr($i, length(from) + 1); changed++ }
    }
    { print }
    END { exit changed ? 0 : 1 }' "$1" > "$1.dvc-new"
}
# deb822 sources: "Suites: SUITE..." (the field name is case-insensitive).
rewrite_sources() {
  awk -v from="$from" -v to="$to" '
    tolower($1) == "suites:" {
      for (i = 2; i <= NF; i++)
        if ($i == from || index($i, from "-") == 1) { $i = to substr($i, length(from) + 1); changed++ }
    }
    { print }
    END { exit changed ? 0 : 1 }' "$1" > "$1.dvc-new"
}

# shellcheck disable=SC1091 # the guest's own file
. /etc/os-release
say "upgrading ${PRETTY_NAME:-this system} from $from to $to (kernel $(uname -r))"
dpkg-query -W -f '${Package}\t${Version}\n' | LC_ALL=C sort > "$share/upgrade-out.before"

changed=0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  # Only regular files: a link in the guest is the guest's business, not a source to rewrite through.
  if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
  case $f in
    *.sources) rewrite=rewrite_sources ;;
    *) rewrite=rewrite_list ;;
  esac
  if "$rewrite" "$f"; then
    cat "$f.dvc-new" > "$f"
    changed=$((changed + 1))
    say "apt source $f now names $to"
  fi
  rm -f "$f.dvc-new"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && { echo "# $f"; cat "$f"; }
done > "$share/upgrade-out.sources"
if [ "$changed" -eq 0 ]; then
  say "FAILED: no apt source names $from"
  exit 101
fi

say "apt-get update"
apt_get update || { say "FAILED: apt-get update exited with status $?"; exit 100; }
say "apt-get upgrade --without-new-pkgs"
apt_get upgrade --without-new-pkgs || { say "FAILED: apt-get upgrade exited with status $?"; exit 102; }
say "apt-get full-upgrade"
apt_get full-upgrade || { say "FAILED: apt-get full-upgrade exited with status $?"; exit 102; }
apt-get clean

dpkg-query -W -f '${Package}\t${Version}\n' | LC_ALL=C sort > "$share/upgrade-out.after"
dpkg --audit > "$share/upgrade-out.audit" 2>&1
if [ -s "$share/upgrade-out.audit" ]; then
  cat "$share/upgrade-out.audit"
  say "FAILED: dpkg --audit found packages left half installed"
  exit 103
fi

kernel=$(linux-version list 2> /dev/null | linux-version sort 2> /dev/null | tail -n 1)
if [ -z "$kernel" ]; then
  say "FAILED: no kernel is installed (linux-version list is empty)"
  exit 104
fi
printf '%s\n' "$kernel" > "$share/upgrade-out.kernel"
say "newest kernel: $kernel"
if [ "$boot" = direct ]; then
  for f in "/boot/vmlinuz-$kernel" "/boot/initrd.img-$kernel"; do
    [ -f "$f" ] || { say "FAILED: $f is missing"; exit 104; }
  done
  if ! cp "/boot/vmlinuz-$kernel" "$share/upgrade-out.vmlinuz" || ! cp "/boot/initrd.img-$kernel" "$share/upgrade-out.initrd"; then
    say "FAILED: copying the kernel out"
    exit 104
  fi
fi
sync
# shellcheck disable=SC1091 # the guest's own file
. /etc/os-release
say "upgraded: ${PRETTY_NAME:-?}"
