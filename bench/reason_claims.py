"""Checks every claim of every ``cpu`` reason over the dev data and the labelled suite; prints the false ones.

    .venv/bin/python bench/reason_claims.py [--data /work/shared/data] [--suite build/suite]

The attributor keeps only claims its checker verifies, so "false claims in reasons" must be 0; the count of
checked claims and the verdicts per claim kind show how much the reasons say.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_cpu_attributor import load_dev, load_suite  # noqa: E402

from agenttrace.attribution import claims as cl  # noqa: E402
from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--suite", default=str(ROOT / "build" / "suite"))
    args = ap.parse_args()
    items = [it for v in load_dev(Path(args.data)).values() for it in v] + load_suite(Path(args.suite))
    kinds: Counter[str] = Counter()
    false: list[tuple[str, cl.Claim]] = []
    for use_g in (True, False):
        att = CpuAttributor(use_expected=use_g)
        for it in items:
            _, claims = att.explain(it.trajectory)
            kinds.update(type(c).__name__ for c in claims)
            false += [(it.id, c) for c in cl.check_claims(it.trajectory, claims)]
    print(f"trajectories: {len(items)} (x2: with and without the ground truth)")
    print(f"claims checked: {sum(kinds.values())}  by kind: {dict(kinds.most_common())}")
    print(f"false claims in reasons: {len(false)}")
    for item_id, claim in false[:20]:
        print("  ", item_id, claim)
    sys.exit(1 if false else 0)


if __name__ == "__main__":
    main()
