#!/usr/bin/env bash
# Install Debian's `chromium` for the web-map browser test (tests/test_web_map.py) when it is missing,
# with two small fonts so page text (Chinese names included) renders in screenshots.
# Idempotent and quiet: does nothing when all are present. Playwright drives this system browser
# (never `playwright install`), so the test downloads nothing beyond the distribution's packages.
# GRIDRISK_CHROMIUM=/path/to/chromium uses another Chromium instead (then nothing is installed for it).
set -euo pipefail
say() { printf '\033[1m[install-browser]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[install-browser] error:\033[0m %s\n' "$*" >&2; exit 1; }

CHROMIUM="${GRIDRISK_CHROMIUM:-/usr/bin/chromium}"
runs() { [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; }
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
if ! runs; then
  [ -n "${GRIDRISK_CHROMIUM:-}" ] && die "GRIDRISK_CHROMIUM=$CHROMIUM does not run"
  missing+=(chromium)
fi
if command -v dpkg-query >/dev/null; then
  for pkg in fonts-liberation fonts-wqy-microhei; do have "$pkg" || missing+=("$pkg"); done
fi
[ "${#missing[@]}" -eq 0 ] && exit 0
command -v apt-get >/dev/null \
  || die "chromium is missing and this is not a Debian/Ubuntu system: install Chromium and set GRIDRISK_CHROMIUM to it"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else die "need root (or sudo) to run: $*"; fi
}

say "installing ${missing[*]} (apt-get)…"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
runs || die "chromium did not install at $CHROMIUM"
say "$("$CHROMIUM" --version 2>/dev/null) ready"
