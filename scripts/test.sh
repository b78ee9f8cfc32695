#!/usr/bin/env bash
# The test command (README quick start, .ci/run): set-up, static checks, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "set-up: npm ci and host packages"
if ! { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; }; then
  npm ci --no-audit --no-fund
fi
sh scripts/host-packages.sh

step "lint (eslint --max-warnings=0)"
npx eslint . --max-warnings=0
step "format (prettier --check)"
npx prettier --check . --log-level warn
step "type check (tsc)"
npx tsc --noEmit
step "no import cycle in src/ (dpdm, type-only imports counted)"
npm run --silent check:cycles
step "dist/ is what src/ bundles to"
node scripts/check-dist.mjs
step "README inputs/outputs table matches action.yml"
node scripts/readme-inputs.mjs --check
step "every relative Markdown link resolves"
node scripts/check-links.mjs
step "our own shell passes our own lint stage (no finding of any severity)"
node dist/cli/index.js run --working-directory . --build-package false --install false --lint-fail-on style \
  --lint-exclude '__tests__/**,examples/**,dist/**' --output-dir build/self-lint

step "unit and integration tests (vitest)"
mkdir -p build
rm -f build/vitest*.json
status=0
if [ $# -gt 0 ]; then
  npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest.json "$@" || status=$?
else
  # Two lanes side by side (vitest.config.ts): the long lane (two long VM runs and the boot cases) in a second
  # vitest, its output in build/integration-long.log, printed when it ends. One vitest would run its projects one after the other.
  echo "integration-long lane (grml-debootstrap and release upgrade end to end, the boot cases) started: build/integration-long.log"
  npx vitest run --project integration-long --reporter=default --reporter=json \
    --outputFile.json=build/vitest-long.json > build/integration-long.log 2>&1 &
  long=$!
  trap 'kill -TERM "$long" 2>/dev/null' INT TERM
  npx vitest run --project unit --project integration --reporter=default --reporter=json \
    --outputFile.json=build/vitest.json || status=$?
  long_status=0
  wait "$long" || long_status=$?
  step "integration-long lane (exit status $long_status)"
  cat build/integration-long.log
  [ "$long_status" -eq 0 ] || status=$long_status
fi
# shellcheck disable=SC2016 # JavaScript in single quotes: its ${} are template literals
node -e '
  const fs = require("fs");
  const n = { passed: 0, failed: 0, skipped: 0 };
  for (const f of ["build/vitest.json", "build/vitest-long.json"].filter((f) => fs.existsSync(f))) {
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    n.passed += r.numPassedTests;
    n.failed += r.numFailedTests;
    n.skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`\n${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped`);
' || true
exit $status
