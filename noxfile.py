"""Framework test environments: one per group of frameworks whose pins agree, as opentelemetry-python-contrib does.

Each session installs agenttrace plus that group's frameworks (current versions)
and runs the group's tests against real framework code and a scripted LLM server.
"""

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# session name -> (framework requirements, test files under tests/integrations/)
ENVIRONMENTS: dict[str, tuple[list[str], list[str]]] = {
    # autogen-agentchat and ag2 both install an ``autogen`` import package: never in one environment
    "autogen": (["autogen-agentchat>=0.7", "autogen-ext[openai]>=0.7"], ["test_autogen.py"]),
    # ag2 1.x replaced the classic ``autogen`` API (ConversableAgent/GroupChat) this integration traces
    "ag2": (["ag2[openai]>=0.10,<1"], ["test_ag2.py"]),
    "smolagents_pydantic_ai_llama_index": (
        ["smolagents>=1.20", "pydantic-ai-slim[openai]>=1.0", "llama-index-core>=0.14",
         "llama-index-llms-openai-like>=0.5"],
        ["test_smolagents.py", "test_pydantic_ai.py", "test_llama_index.py"],
    ),
    # camel-ai 0.2.90 imports mcp.server.FastMCP, which mcp 2.x no longer has
    "camel": (["camel-ai>=0.2.70", "mcp<2"], ["test_camel.py"]),
    # crewai pins pydantic<2.13, chromadb, lancedb and regex exactly: its own environment
    "crewai": (["crewai>=1.10"], ["test_crewai.py"]),
    # LangGraph/LangChain + OpenAI Agents SDK, and the third-party instrumentors whose spans the collector must
    # read (OpenInference, OpenLLMetry = PyPI's opentelemetry-instrumentation-langchain, contrib's openai-v2 and
    # openai-agents-v2):
    # their pins agree, so one environment. openai-v2 2.4b0 imports util-genai's pre-1.2 module layout.
    "langgraph_openai_agents": (
        ["langgraph>=1.0", "langchain-openai>=1.0", "langgraph-supervisor>=0.0.29", "langgraph-swarm>=0.0.14",
         "openai-agents>=0.6", "openinference-instrumentation-langchain>=0.1.50",
         "openinference-instrumentation-openai-agents>=1.0", "opentelemetry-instrumentation-langchain>=0.60",
         "opentelemetry-instrumentation-openai-v2>=2.0b0", "opentelemetry-instrumentation-openai-agents-v2>=0.1",
         "opentelemetry-util-genai<1.2"],
        ["test_langgraph.py", "test_openai_agents.py", "test_foreign_conventions.py", "test_suite_runs.py"],
    ),
}


def _session(name: str, requirements: list[str], tests: list[str]):
    @nox.session(name=name)
    def run(session: nox.Session) -> None:
        session.install("-e", ".[collector,test]", *requirements)
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *[f"tests/integrations/{t}" for t in tests], *session.posargs)

    return run


# `nox` alone runs the framework test sessions; benchmarks are run by name (`nox -s bench_...`).
nox.options.sessions = list(ENVIRONMENTS)

for _name, (_requirements, _tests) in ENVIRONMENTS.items():
    globals()[f"session_{_name}"] = _session(_name, _requirements, _tests)


# environment -> frameworks with a suite driver (agenttrace/suite/drivers/) that it can run
SUITE_FRAMEWORKS = {"langgraph_openai_agents": ["langgraph", "openai_agents"]}


def _suite_session(env: str, frameworks: list[str]):
    @nox.session(name=f"suite-{env}")
    def run(session: nox.Session) -> None:
        """Regenerates build/suite/<framework>.jsonl (labelled runs with planted errors); posargs go to the generator."""
        session.install("-e", ".[collector]", *ENVIRONMENTS[env][0])
        for framework in frameworks:
            session.run("agenttrace", "suite", "generate", "--framework", framework, *session.posargs)

    return run


# not in nox.options.sessions: the suite is made on purpose (`nox -s suite-<env>`), not by CI
for _env, _frameworks in SUITE_FRAMEWORKS.items():
    globals()[f"suite_{_env}"] = _suite_session(_env, _frameworks)


@nox.session(name="bench_overhead")
def bench_overhead(session: nox.Session) -> None:
    """Tracing overhead per agent step (LangGraph, OpenAI Agents): uninstrumented vs agenttrace vs OpenInference."""
    session.install("-e", ".", *ENVIRONMENTS["langgraph_openai_agents"][0])
    session.run("python", "bench/overhead.py", *session.posargs)


@nox.session(name="bench_ingest")
def bench_ingest(session: nox.Session) -> None:
    """Collector ingest rate (OTLP/HTTP protobuf, spans/s until stored) against Arize Phoenix on the same payload."""
    session.install("-e", ".[collector]", "arize-phoenix")
    session.run("python", "bench/ingest.py", *session.posargs)
