"""Framework integrations for agenttrace, one module per framework, found through the agenttrace.integrations entry points."""
