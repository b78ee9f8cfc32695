#!/bin/sh
# Runs inside the booted test VM, as root, in the host's share (debian-vm-ci's autopkgtest stage):
# the source package's DEP-8 tests, driven by Debian's own autopkgtest with its null virtualisation
# server (the booted VM is the testbed; debian-vm-ci keeps its boot and console watching), against
# the .deb files this run built.
#
# Usage: autopkgtest-in-guest.sh TEST_TIMEOUT_SECONDS NEEDS_INTERNET
# NEEDS_INTERNET is autopkgtest's --needs-internet: skip when the VM's network is walled to the proxy.
# apt already goes through the run's proxy (src/vm/guest-job.ts configures it before the script starts).
#
# Input in the share: autopkgtest-input.tar (source/ the source tree, debs/ the built packages).
# Output in the share, plain names only: autopkgtest-out.<file> for each regular file of autopkgtest's
# output directory, autopkgtest-out.artifacts.tar for the tests' artifacts, and the list of the
# copied names in autopkgtest-out.list.
# Exit status: autopkgtest's own (0-20), or 100-103 when the set-up before it failed.
set -u
exec 2>&1
test_timeout=$1
needs_internet=$2
work=/var/tmp/debian-vm-ci-autopkgtest
export DEBIAN_FRONTEND=noninteractive

say() { echo "debian-vm-ci: $*"; }

rm -rf "$work"
mkdir -p "$work"

say "apt-get update"
apt-get update -q || { say "FAILED: apt-get update exited with status $?"; exit 100; }
say "installing autopkgtest"
apt-get install -y -q --no-install-recommends autopkgtest ||
  { say "FAILED: installing autopkgtest exited with status $?"; exit 101; }
dpkg-query -W -f='debian-vm-ci: autopkgtest ${Version}\n' autopkgtest

tar -x -f autopkgtest-input.tar -C "$work" || { say "FAILED: unpacking the source and packages"; exit 102; }
set -- "$work"/debs/*.deb
[ -e "$1" ] || { say "FAILED: no .deb files in the input"; exit 103; }

say "running autopkgtest on the source tree with $# built package(s)"
status=0
internet=
if autopkgtest --help 2>&1 | grep -q -e '--needs-internet'; then
  internet=--needs-internet=$needs_internet
else
  say "this autopkgtest has no --needs-internet: tests that need the internet run as any other"
fi
autopkgtest ${internet:+"$internet"} --output-dir "$work/out" --timeout-test="$test_timeout" \
  "$work/source/" "$@" -- null || status=$?
say "autopkgtest exited with status $status"

# Back to the host: regular files only, under plain names at the share's top.
: > autopkgtest-out.list
for f in "$work"/out/*; do
  name=${f##*/}
  case "$name" in *[!A-Za-z0-9._-]*|.*) continue ;; esac
  if [ -f "$f" ] && [ ! -L "$f" ]; then
    cp "$f" "autopkgtest-out.$name" && echo "$name" >> autopkgtest-out.list
  fi
done
if [ -d "$work/out/artifacts" ]; then
  tar -c -f autopkgtest-out.artifacts.tar -C "$work/out" artifacts && echo artifacts.tar >> autopkgtest-out.list
fi
sync
exit "$status"
