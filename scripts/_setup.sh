# Sourced by the scripts in this folder: makes .venv with credbroker and its dev extras, once.
# Re-installs when pyproject.toml changes, so a fresh clone and an updated checkout both just work.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "credbroker needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
STAMP=".venv/.credbroker-installed"
WANT="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "== setting up .venv (python: $("$PY" --version)); this takes a minute on a fresh machine"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  LOG=".venv/install.log"
  # pip's own chatter goes to the log; it is shown only when the install fails.
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
         && .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev]'; } >"$LOG" 2>&1; then
    tail -40 "$LOG" >&2
    echo "installing credbroker's dependencies failed; full log: $ROOT/$LOG" >&2
    exit 1
  fi
  .venv/bin/python -c 'import credbroker, hvac, ccxt, openai' || { echo "install failed; see $ROOT/$LOG" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
