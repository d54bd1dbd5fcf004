"""A labelled suite of real framework runs with one planted, decisive error each.

Framework-neutral parts: ``worlds`` (small deterministic worlds and their tools), ``taxonomy`` (the error
kinds), ``simulate`` (a scripted policy that writes each agent's turns from what the tools return, planting
errors where told), ``topologies`` (the team shapes), ``episodes`` (seeded choice of world, topology, error,
position and a repaired earlier error), ``labels`` (finding the planted turn in the trajectory the collector
rebuilt) and ``generate`` (run, replay without the error, keep what replay confirms, write JSONL).
Framework wiring lives in ``drivers/``, one small module per framework.
"""
