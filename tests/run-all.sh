#!/usr/bin/env bash
# The project's test command: one command on a fresh Debian machine.
#   bash tests/run-all.sh [pytest args...]
# 1. installs Debian's Chromium if no Chromium is found (the browser tests drive it with Playwright),
# 2. installs the package with its dev extra into the active Python environment
#    (outside any virtualenv, into ./.venv, created if needed),
# 3. runs pytest with the given arguments.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

section() { printf '\n=== %s ===\n' "$*"; }

apt_install() {
  # apt_install PKG... : as root directly, else through sudo; return 1 if neither is possible.
  local -a run=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      run=(sudo env DEBIAN_FRONTEND=noninteractive)
    else
      return 1
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  ${run[@]+"${run[@]}"} apt-get update -qq
  ${run[@]+"${run[@]}"} apt-get install -y -qq "$@"
}

have_chromium() {
  [ -n "${CHROMIUM_PATH:-}" ] && [ -x "${CHROMIUM_PATH}" ] && return 0
  [ -x /usr/lib/chromium/chromium ] || [ -x /usr/bin/chromium ] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

section "browser"
if have_chromium; then
  echo "chromium: found"
else
  echo "chromium: not found, installing Debian's chromium"
  if ! apt_install chromium; then
    echo "WARNING: could not install chromium (needs apt-get and root or sudo): the browser tests will fail." >&2
    echo "Install it yourself: sudo apt-get update && sudo apt-get install -y chromium" >&2
  fi
fi

section "python environment"
if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] && command -v python >/dev/null 2>&1; then
  PY=python
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif command -v python >/dev/null 2>&1; then
  PY=python
else
  PY=python3
fi
# A system Python that refuses pip installs (PEP 668, e.g. Debian's): use ./.venv instead.
if ! "$PY" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null &&
   "$PY" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))' 2>/dev/null; then
  echo "$PY is an externally managed system Python: using ./.venv"
  if ! "$PY" -m venv .venv; then
    apt_install python3-venv || { echo "Install python3-venv (apt-get install -y python3-venv)." >&2; exit 1; }
    "$PY" -m venv .venv
  fi
  PY=.venv/bin/python
fi
echo "python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

section "install: pip install -e '.[dev]'"
"$PY" -m pip install --disable-pip-version-check -q -e '.[dev]'

section "pytest $*"
exec "$PY" -m pytest "$@"
