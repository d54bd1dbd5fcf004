#!/usr/bin/env bash
# Headless Chromium for the collector's UI tests: prints the path of a chromium executable.
#
#   scripts/chromium.sh          installs Debian's "chromium" package if missing (root, apt-get) and prints its path
#
# No browser is ever downloaded from elsewhere (playwright install is not used): Debian's package or nothing.
# $AGENTTRACE_CHROMIUM, when set to an executable, is printed as it is.
# Exit status 3: Chromium is not installed and cannot be (not root, or no apt-get, or the install failed).
set -euo pipefail

find_chromium() {
  local c
  for c in "${AGENTTRACE_CHROMIUM:-}" chromium chromium-browser /usr/bin/chromium /usr/lib/chromium/chromium; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

install_chromium() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "chromium.sh: Chromium is not installed, and installing it needs root and apt-get" >&2
    exit 3
  fi
  echo "chromium.sh: installing Chromium (apt-get install chromium)" >&2
  local start=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || { echo "chromium.sh: apt-get update failed" >&2; exit 3; }
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2 \
    || { echo "chromium.sh: apt-get install chromium failed" >&2; exit 3; }
  echo "chromium.sh: installed in $((SECONDS - start)) s" >&2
}

find_chromium || { install_chromium; find_chromium || { echo "chromium.sh: no chromium after install" >&2; exit 3; }; }
