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
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=build/vitest.json "$@" || status=$?
# shellcheck disable=SC2016 # JavaScript in single quotes: its ${} are template literals
node -e '
  const r = JSON.parse(require("fs").readFileSync("build/vitest.json", "utf8"));
  console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit $status
