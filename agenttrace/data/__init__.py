"""Labelled data and what is done with it: loading Who&When / TracerTraj (``datasets``), fault injection
(``faults``), counterfactual replay (``replay``), scoring and evaluation of attributors (``scoring``,
``evaluate``) and training a tracer model (``train``). The labelled suite generator is ``agenttrace.suite``."""
