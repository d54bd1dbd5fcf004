# Creates (once) and fills the project's virtual environment at .venv; sourced by scripts/test and scripts/demo.
# torch is pinned to 2.13.0: on this platform that is the local CPU build; anything else pulls CUDA wheels.
VENV="${AGENTTRACE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"; }
pip_install --upgrade pip
EXTRAS="${AGENTTRACE_EXTRAS:-collector,gpu,train,test,postgres}"
case ",$EXTRAS," in
  *,gpu,*|*,train,*) pip_install "torch==2.13.0" ;;  # before anything that asks for torch
esac
pip_install -e ".[$EXTRAS]"
