#!/usr/bin/env bash
# Fetches, here, the wheels the GPU machine lacks into .whl/ (git-ignored), for bench/device_check.sh.
# What the GPU image already has is read from the device tool's KINDS.md (torch, transformers, peft, numpy,
# pyarrow, ...). Everything else that agenttrace, trl, datasets and transformers need is taken from .venv's
# dependency closure at .venv's versions, so the GPU run tests what CI tests; transformers itself is always
# carried at .venv's version.
set -euo pipefail
cd "$(dirname "$0")/.."
KINDS="${DEVICE_KINDS:-/work/.library/device/KINDS.md}"
PINS=$(.venv/bin/python - "$KINDS" <<'PY'
import re
import sys
from importlib.metadata import distribution
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

text = open(sys.argv[1]).read() if sys.argv[1] else ""
line = next((l for l in text.splitlines() if "Packages:" in l and "nvidia-h200" in l), "")
present = {canonicalize_name(n) for n in re.findall(r"[A-Za-z0-9_.\-]+", line.split("Packages:", 1)[-1])}
present.discard("transformers")  # carried at the CPU suite's version
want, seen = ["agenttrace", "trl", "datasets", "transformers"], set()
while want:
    name = canonicalize_name(want.pop())
    if name in seen:
        continue
    seen.add(name)
    for req in distribution(name).requires or []:
        r = Requirement(req)
        if r.marker is None or r.marker.evaluate({"extra": "", "python_version": "3.12"}):
            want.append(r.name)
out = sorted(n for n in seen - present - {"agenttrace"})
print(" ".join(f"{n}=={distribution(n).version}" for n in out))
PY
)
echo "carrying: $PINS"
rm -rf .whl && mkdir .whl
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl $PINS 2> >(grep -v " is ignored: " >&2)
du -sh .whl
