#!/usr/bin/env bash
# The demo: set up the machine, make busybox:latest offline, build fixtures/hello, run it.
#   bash scripts/demo.sh        (as root on Debian 12; uses the default store or $HOIST_ROOT)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
hoist() { packages/cli/bin/hoist "$@"; }
bash fixtures/base/busybox.sh
hoist build --progress plain -t hello:latest fixtures/hello
hoist run hello:latest
