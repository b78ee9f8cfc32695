#!/usr/bin/env bash
# The main job (README quick start): the full pipeline on the bundled example project.
# lint -> package (built in a clean trixie environment) -> install (mmdebstrap image with the built
# package) -> boot (QEMU, serial console watched) -> validate (goss in the guest) -> publish.
# Reports land in ./debian-vm-ci-out. Extra arguments are passed on as inputs (--release bookworm ...).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then
  npm ci --no-audit --no-fund
fi
sh scripts/host-packages.sh
exec node dist/cli/index.js run \
  --working-directory examples/hello \
  --installer mmdebstrap \
  --install-built-packages true \
  --output-dir "$PWD/debian-vm-ci-out" \
  "$@"
