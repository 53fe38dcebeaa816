#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs vitest (unit tests and the slow
# tests that build real images with buildah and run them). Ends with "N passed, N failed".
# SVCBUILD_FAST=1 leaves the slow tests out (test/slow: real image builds; test/bed: the
# cluster test bed, whose end-to-end suite is also `npm run test:e2e`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
report="$(mktemp)"
args=(run --reporter=default --reporter=json --outputFile.json="$report")
if [ "${SVCBUILD_FAST:-}" = 1 ]; then args+=(--exclude 'test/slow/**' --exclude 'test/bed/**'); fi
set +e
node node_modules/vitest/vitest.mjs "${args[@]}" "$@"
code=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  // Failed tests; a file that failed without any test failing (e.g. it did not load) counts once.
  const failed = r.numFailedTests > 0 ? r.numFailedTests : r.numFailedTestSuites || 0;
  console.log(`${r.numPassedTests} passed, ${failed} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' "$report" || echo "0 passed, 1 failed"
rm -f "$report"
exit $code
