# Creates (once) and fills the project's virtual environment at .venv; sourced by scripts/test and scripts/demo.
# It installs again only when pyproject.toml or this file changed, or for a set of extras not installed yet:
# a stamp per set of extras holds the hash of both files.
# torch is pinned to 2.13.0: on this platform that is the local CPU build; anything else pulls CUDA wheels.
VENV="${AGENTTRACE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
EXTRAS="${AGENTTRACE_EXTRAS:-collector,gpu,train,test,postgres}"
STAMP="$VENV/.agenttrace-installed-${EXTRAS//,/-}"
WANT="$(cat pyproject.toml scripts/_venv.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  pip_install --upgrade pip
  case ",$EXTRAS," in
    *,gpu,*|*,train,*) pip_install "torch==2.13.0" ;;  # before anything that asks for torch
  esac
  pip_install -e ".[$EXTRAS]"
  echo "$WANT" > "$STAMP"
fi
