#!/usr/bin/env bash
# Runs the system tests (pytest, Debian's /usr/bin/python3) against one build's binaries.
set -uo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
export VOXI_BUILD=$build
/usr/bin/python3 -m pytest -p no:cacheprovider -q -ra tests/system
code=$?
if [[ $code -eq 5 ]]; then
  echo "system: pytest collected no tests" >&2
fi
exit $code
