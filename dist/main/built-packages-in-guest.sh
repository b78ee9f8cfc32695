#!/bin/sh
# Runs inside the first boot of an mmdebstrap image, as root, in the host's share (debian-vm-ci's install stage,
# src/install/first-boot.ts): installs the packages this run built when mmdebstrap could not install them in a user
# namespace, so that their maintainer scripts run as root of the VM and never as root of the host.
#
# Usage: built-packages-in-guest.sh PROXY-CONF
# apt goes through the run's proxy, configured in PROXY-CONF (src/vm/guest-job.ts writes it before the script
# starts); the script removes it again, with the package lists and the apt cache, as mmdebstrap leaves an image.
# Input in the share: built-input.tar (debs/ the built packages).
# Exit status: 0 when they are installed, 100 apt-get update failed, 101 the install failed, 102 unpacking the input.
set -u
exec 2>&1
work=/var/tmp/debian-vm-ci-built
proxy_conf=$1
export DEBIAN_FRONTEND=noninteractive
say() { echo "debian-vm-ci: $*"; }
cleanup() {
  rm -rf "$work"
  rm -f "$proxy_conf"
  apt-get clean
  find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete
  sync
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work"
tar -x -f built-input.tar -C "$work" || { say "FAILED: unpacking the packages"; exit 102; }
set -- "$work"/debs/*.deb
[ -e "$1" ] || { say "FAILED: no .deb files in the input"; exit 102; }

say "apt-get update"
apt-get update -q || { say "FAILED: apt-get update exited with status $?"; exit 100; }
names=""
for deb in "$@"; do names="$names ${deb##*/}"; done
say "installing the packages built by this run:$names"
# --allow-downgrades: the built package is the one under test, even when the release has a newer version.
apt-get install -y -q --allow-downgrades "$@" || { say "FAILED: apt-get install exited with status $?"; exit 101; }
say "installed as root of the VM (uid map: $(tr -s ' ' < /proc/self/uid_map | sed 's/^ //'))"
