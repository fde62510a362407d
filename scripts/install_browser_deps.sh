#!/usr/bin/env bash
# Install what the browser tests (tests/browser/) need: Debian's chromium plus a basic font.
#
# Playwright's own `playwright install` cannot download browsers on our CI machines, so the tests drive
# the distribution's chromium through `executable_path`.  This script is:
#   * idempotent and a fast no-op when everything is present;
#   * non-interactive (no stdin, DEBIAN_FRONTEND=noninteractive), for root on a fresh Debian/Ubuntu box;
#   * quiet unless something fails (then the captured apt output is printed).
# Set CHROMIUM=/path/to/chromium to point the tests at another binary; this script then does nothing.
set -euo pipefail

CHROMIUM_BIN="${CHROMIUM:-/usr/bin/chromium}"
PACKAGES=(chromium fonts-dejavu-core)

missing=()
[ -x "$CHROMIUM_BIN" ] || missing+=(chromium)
if [ -z "${CHROMIUM:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
    dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q "ok installed" \
        || missing+=(fonts-dejavu-core)
fi
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ -n "${CHROMIUM:-}" ] && [ ! -x "$CHROMIUM_BIN" ]; then
    echo "install_browser_deps: CHROMIUM=$CHROMIUM_BIN is not executable" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser_deps: missing ${missing[*]} and no apt-get here; install chromium by hand" \
         "(the browser tests will be skipped)" >&2
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "install_browser_deps: missing ${missing[*]}; not root and no passwordless sudo," \
             "so not installing (the browser tests will be skipped)" >&2
        exit 0
    fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if ! { "${SUDO[@]}" apt-get update -q && "${SUDO[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}"; } \
        </dev/null >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_browser_deps: apt-get failed installing ${missing[*]}" >&2
    exit 1
fi
if [ ! -x "$CHROMIUM_BIN" ]; then
    echo "install_browser_deps: chromium installed but $CHROMIUM_BIN is missing" >&2
    exit 1
fi
