"""A labelled suite of real framework runs with one planted, decisive error each (see bench/README.md).

Framework-neutral parts: ``worlds`` (small deterministic worlds and their tools), ``taxonomy`` (the error
kinds), ``plan`` (turns, agents, tasks), ``simulate`` (a scripted policy that writes each agent's turns from
what the tools will return, planting errors where told), ``topologies`` (the team shapes), ``episodes`` (seeded
choice of world, topology, error, position and a repaired earlier error), ``script`` (turns as the scripted
model's replies: handoffs or delegation), ``labels`` (finding the planted turn in the trajectory the collector
rebuilt) and ``generate`` (run, replay without the error, keep what replay confirms, write JSONL); ``cli`` is
``agenttrace suite``. Framework wiring lives in ``drivers/``, one small module per framework.
"""
