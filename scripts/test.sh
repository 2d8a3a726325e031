#!/usr/bin/env bash
# Every test (the README's test command): makes .venv if it is missing, installs into it
# what the tests need and is not there yet (Python's `websockets` for tests/interop_python.rs
# and the browser test, `kosoku` for scripts/autobahn.sh), installs Debian's chromium with
# apt-get when it is missing (failing if it cannot), runs `cargo test --all-features` with
# any arguments given, then the chat example in headless Chromium (scripts/browser_chat.py).
# Traffic stays on 127.0.0.1; the installs are the only downloads.
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

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "installing Debian's chromium (for scripts/browser_chat.py)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 $sudo apt-get update -qq
  timeout 900 $sudo apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null || { echo "chromium could not be installed" >&2; exit 1; }
fi

cargo test --all-features "$@"

echo "==> the chat example in headless Chromium"
cargo build --release --features axum,deflate --example chat
timeout 300 .venv/bin/python3 scripts/browser_chat.py
