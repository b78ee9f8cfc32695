#!/bin/sh
# Installs the Debian/Ubuntu packages the test suite and the example need, if missing.
# The pipeline itself installs what a stage needs on demand; this makes the tests' set-up explicit.
# Optional packages that this distribution does not have (user-mode-linux and libslirp-helper on
# Ubuntu 24.04) are skipped with a message: only the User-Mode Linux builder needs them.
set -eu
required="qemu-system-x86 qemu-utils ovmf mmdebstrap shellcheck e2fsprogs binutils uidmap dosfstools mtools
          arch-test qemu-system-arm binutils-aarch64-linux-gnu debian-archive-keyring python3 python3-seccomp sudo
          zstd curl ca-certificates"
optional="user-mode-linux libslirp-helper"
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
missing=""
for p in $required $optional; do installed "$p" || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
wanted=""
for p in $missing; do
  if apt-cache policy "$p" 2>/dev/null | grep -q '^  Candidate: [^(]'; then
    wanted="$wanted $p"
  else
    case " $optional " in
      *" $p "*) echo "host-packages: $p is not packaged for this distribution: skipped (only the User-Mode Linux builder needs it)" ;;
      *) echo "host-packages: $p is required but this distribution has no installable package of that name" >&2; exit 1 ;;
    esac
  fi
done
[ -z "$wanted" ] && exit 0
echo "host-packages: installing$wanted"
# shellcheck disable=SC2086 # a list of package names, split into words on purpose
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $wanted
