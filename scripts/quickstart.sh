#!/usr/bin/env bash
# The main job end to end on the local default: installs what is missing, starts the local
# registry on 127.0.0.1:5000, and builds the bundled example Python service (image by digest,
# overlay zip, chart). The first run also builds the base images (about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
SVCBUILD_SETUP_TOOLS=0 scripts/setup.sh   # the test-only tools (Go builds) are not needed here
export PATH="$PWD/node_modules/.bin:$PATH"
node bin/svcbuild.js registry start
node bin/svcbuild.js build examples/python-hello "$@"
