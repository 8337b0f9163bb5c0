#!/usr/bin/env bash
# Create ./.venv with Python ≥ 3.11 and install gridrisk with its pinned dependencies (constraints.txt).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[bootstrap] error:\033[0m %s\n' "$*" >&2; exit 1; }

PY=""
for cand in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    PY="$cand"; break
  fi
done
[ -n "$PY" ] || die "Python 3.11 or newer is needed (try: apt-get install python3.11 python3.11-venv)"

if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  command -v apt-get >/dev/null || die "$PY lacks the venv module; install it for your system"
  say "installing python3-venv"
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_ apt-get update -qq && (sudo_ apt-get install -y -qq "python$ver-venv" || sudo_ apt-get install -y -qq python3-venv)
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
say "installing gridrisk and its dependencies into .venv (pinned by constraints.txt)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'

# Map images (/risk-map/{layer}.png) write Chinese titles and legends: a CJK font if apt can get one.
if [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] && command -v apt-get >/dev/null; then
  say "installing fonts-wqy-microhei (Chinese text in map images)"
  sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  (sudo_ apt-get update -qq && sudo_ apt-get install -y -qq fonts-wqy-microhei) \
    || say "could not install fonts-wqy-microhei: map images will show Chinese as boxes"
fi
