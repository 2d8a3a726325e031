#!/usr/bin/env bash
# Every test (the README's test command): makes .venv if it is missing, installs into it
# what the tests need and is not there yet (Python's `websockets` for tests/interop_python.rs,
# `kosoku` for scripts/autobahn.sh), then runs `cargo test --all-features` with any
# arguments given. Traffic stays on 127.0.0.1; the install is the only download.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python3 ]; then
  python3 -m venv .venv
fi

missing=()
# websockets 13 brought the asyncio API the interop peers use (tests/python/).
.venv/bin/python3 -c 'import websockets.asyncio.client' 2>/dev/null || missing+=("websockets>=13")
.venv/bin/python3 -c 'import kosoku' 2>/dev/null || missing+=(kosoku)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing into .venv: ${missing[*]}"
  timeout 300 .venv/bin/pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

exec cargo test --all-features "$@"
