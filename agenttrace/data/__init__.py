"""Labelled data and what is done with it: loading Who&When / TracerTraj (``datasets``, with the tool calls a
logged message records read back by ``messages``), fault injection (``faults``), counterfactual replay
(``replay``), scoring and evaluation of attributors (``scoring``, ``evaluate``) and training a tracer model
(``train``). The labelled suite generator is ``agenttrace.suite``."""
