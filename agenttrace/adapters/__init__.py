"""Adapters that put agenttrace's lessons back into a framework's agents (CAMEL/OWL Workforce, MaAS)."""
