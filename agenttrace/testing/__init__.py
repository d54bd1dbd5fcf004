"""Real test peers on loopback: a scripted OpenAI-compatible LLM server and an Arize Phoenix server; and mutated
OTLP exports for fuzzing."""
