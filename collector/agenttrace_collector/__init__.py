"""The agenttrace collector: an OTLP sidecar that stores spans, rebuilds trajectories and attributes failures."""
