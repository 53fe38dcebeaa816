#!/usr/bin/env bash
# `npm run test:e2e`: the end-to-end suite of the cluster test bed.
#
# With a bed of `npm run bed:up` running (controller healthy, pipeline installed), the
# pipeline suite (test/bed/pipeline.test.ts: the example projects through the API, built,
# scanned and deployed in the cluster) runs on that bed, as tenant demo. Otherwise every test
# file of test/bed starts its own private bed, one after the other (the level-1/2 tests
# cannot share a host with a running bed: one node per host).
# Extra arguments go to vitest.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="${SVCBUILD_BED_RUN:-/tmp/svcbuild-bed}"
export PATH="$ROOT/node_modules/.bin:$PATH"
cd "$ROOT"
if [ -f "$RUN/pipeline/svcbuild.yaml" ] && SVCBUILD_BED_RUN="$RUN" "$HERE/argo.sh" status; then
  echo "test:e2e: the bed of npm run bed:up runs in $RUN: running test/bed/pipeline.test.ts on it (the other bed tests need a host without a bed: npm run bed:down first)" >&2
  SVCBUILD_E2E_BED_RUN="$RUN" exec vitest run test/bed/pipeline.test.ts "$@"
fi
exec vitest run test/bed "$@"
