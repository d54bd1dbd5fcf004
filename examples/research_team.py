"""The team ``agenttrace demo`` runs: Planner, Researcher, Calculator, Writer, with a seeded error.

It ships inside the package (``agenttrace.demo.team``) so the demo works from ``pip install``;
this file runs it once against your collector: ``python examples/research_team.py``.
"""

from agenttrace.demo.team import EXPECTED, FACTS, TASK, ResearchTeam

__all__ = ["EXPECTED", "FACTS", "TASK", "ResearchTeam"]

if __name__ == "__main__":
    import agenttrace

    agenttrace.instrument(service_name="research-team")
    print(ResearchTeam().solve().answer)
    agenttrace.uninstrument()
