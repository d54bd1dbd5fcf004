"""Real test peers: a scripted OpenAI-compatible LLM server and a collector started on loopback."""
