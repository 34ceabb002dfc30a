# Sourced by bin/*: make sure .venv exists and matches requirements.txt and requirements-dev.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The interpreter: $PYTHON if set; else Debian's own Python 3.11 where it can make a venv, else python3.
# Debian builds its Python with profile-guided and link-time optimisation; pyenv (these machines' python3)
# builds without them: the same tests take a fifth less CPU in Debian's (tests/test_fuzz.py: 31 s -> 25 s).
if [ -n "${PYTHON:-}" ]; then
  PYTHON_BIN="$PYTHON"
elif [ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c "import ensurepip, venv" 2>/dev/null; then
  PYTHON_BIN=/usr/bin/python3.11
else
  PYTHON_BIN=python3
fi
# A .venv made by another interpreter is made again (it is only what the requirements files list).
WANT_PYTHON="$("$PYTHON_BIN" -c 'import sys; print(sys.executable, *sys.version_info[:2])')"
if [ -x .venv/bin/python ] && [ "$(cat .venv/.python 2>/dev/null)" != "$WANT_PYTHON" ]; then
  echo "Making .venv again with $PYTHON_BIN…"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PYTHON_BIN" --version)…"
  "$PYTHON_BIN" -m venv .venv
  echo "$WANT_PYTHON" > .venv/.python
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
