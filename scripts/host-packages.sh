#!/bin/sh
# Installs the Debian/Ubuntu packages the test suite and the example need, if missing.
# The pipeline itself installs what a stage needs on demand; this makes the tests' set-up explicit.
set -eu
pkgs="qemu-system-x86 qemu-utils ovmf mmdebstrap shellcheck user-mode-linux libslirp-helper e2fsprogs
      binutils uidmap dosfstools mtools arch-test debian-archive-keyring python3 zstd curl ca-certificates"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "host-packages: installing$missing"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
