# Sourced by bin/*: make sure .venv exists and matches requirements.txt and requirements-dev.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $($PYTHON_BIN --version)…"
  "$PYTHON_BIN" -m venv .venv
fi
STAMP=.venv/.requirements.sha
WANT="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "Installing requirements into .venv…"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # The runtime set and what tests and benchmarks add (the image installs requirements.txt alone).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
