"""Self-improvement benchmark: success rate per round under attribution / retry / no feedback, over seeds.

SIMULATION: scripted agents with injected faults (see examples/self_improvement.py for what is assumed).
Usage: python bench/self_improvement.py [--tasks 30] [--rounds 3] [--seeds 5] [--attributor cpu]
With AGENTTRACE_LLM_BASE_URL / AGENTTRACE_LLM_MODEL set, the agents call that model instead (no faults).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "self_improvement.py"


def _example():
    spec = importlib.util.spec_from_file_location("self_improvement_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--attributor", default="cpu")
    ap.add_argument("--json", type=Path, help="Also write the per-seed results here.")
    args = ap.parse_args(argv)
    ex = _example()
    from agenttrace.attribution import get_attributor

    attributor = get_attributor(args.attributor)
    llm = ex.live_llm_from_env()
    per_seed = []
    for seed in range(args.seeds):
        tasks = ex.make_tasks(args.tasks, seed)
        rows = {f"attr:{args.attributor}": ex.run_condition("attribution", tasks, args.rounds,
                                                            attributor=attributor, llm=llm, seed=seed)}
        if llm is None:
            rows["attr:oracle"] = ex.run_condition("attribution", tasks, args.rounds,
                                                   attributor=ex.InjectedFaultOracle(tasks), seed=seed)
        rows["retry"] = ex.run_condition("retry", tasks, args.rounds, llm=llm, seed=seed)
        rows["none"] = ex.run_condition("none", tasks, args.rounds, llm=llm, seed=seed)
        per_seed.append(rows)
    mode = "LIVE MODEL" if llm else "SIMULATION (scripted agents, injected faults)"
    print(f"{mode}: {args.tasks} tasks x {args.rounds} rounds, mean over {args.seeds} seeds")
    print(f"{'feedback':<12}" + "".join(f"round {i + 1:<4}" for i in range(args.rounds)) + "attribution acc.")
    for name in per_seed[0]:
        rates = [sum(s[name]["rates"][r] for s in per_seed) / len(per_seed) for r in range(args.rounds)]
        accs = [s[name]["attribution_accuracy"] for s in per_seed if s[name]["attribution_accuracy"] is not None]
        acc = f"{sum(accs) / len(accs):.0%}" if accs else ""
        print(f"{name:<12}" + "".join(f"{x:<10.0%}" for x in rates) + acc)
    if args.json:
        args.json.write_text(json.dumps(per_seed, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
