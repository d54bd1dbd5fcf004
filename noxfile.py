"""Framework test environments: one per group of frameworks whose pins agree, as opentelemetry-python-contrib does.

Each session installs agenttrace plus that group's frameworks (current versions)
and runs the group's tests against real framework code and a scripted LLM server.
"""

import nox
from packaging.requirements import Requirement

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# session name -> (framework requirements, test files under tests/integrations/). Each framework is pinned to the
# range its tests passed on, with an upper bound (the next minor release for 0.x, the next major otherwise), so
# a framework's breaking release does not turn the test command red; `nox -s latest` tries the newest releases.
ENVIRONMENTS: dict[str, tuple[list[str], list[str]]] = {
    # autogen-agentchat and ag2 both install an ``autogen`` import package: never in one environment
    "autogen": (["autogen-agentchat>=0.7,<0.8", "autogen-ext[openai]>=0.7,<0.8"], ["test_autogen.py", "test_suite_runs.py"]),
    # ag2 1.x replaced the classic ``autogen`` API (ConversableAgent/GroupChat) this integration traces
    "ag2": (["ag2[openai]>=0.10,<0.15"], ["test_ag2.py", "test_suite_runs.py"]),
    "smolagents_pydantic_ai_llama_index": (
        ["smolagents>=1.20,<2", "pydantic-ai-slim[openai]>=1.0,<3", "llama-index-core>=0.14,<0.15",
         "llama-index-llms-openai-like>=0.5,<0.9"],
        ["test_smolagents.py", "test_pydantic_ai.py", "test_llama_index.py", "test_suite_runs.py"],
    ),
    # camel-ai 0.2.90 imports mcp.server.FastMCP, which mcp 2.x no longer has
    "camel": (["camel-ai>=0.2.70,<=0.2.90", "mcp<2"], ["test_camel.py"]),
    # crewai pins pydantic<2.13, chromadb, lancedb and regex exactly: its own environment
    "crewai": (["crewai>=1.10,<2"], ["test_crewai.py", "test_suite_runs.py"]),
    # LangGraph/LangChain + OpenAI Agents SDK, and the third-party instrumentors whose spans the collector must
    # read (OpenInference, OpenLLMetry = PyPI's opentelemetry-instrumentation-langchain, contrib's openai-v2 and
    # openai-agents-v2):
    # their pins agree, so one environment. openai-v2 2.4b0 imports util-genai's pre-1.2 module layout.
    "langgraph_openai_agents": (
        ["langgraph>=1.0,<2", "langchain-openai>=1.0,<2", "langgraph-supervisor>=0.0.29,<0.1",
         "langgraph-swarm>=0.0.14,<0.2", "openai-agents>=0.6,<0.25",
         "openinference-instrumentation-langchain>=0.1.50,<0.2", "openinference-instrumentation-openai-agents>=1.0,<3",
         "opentelemetry-instrumentation-langchain>=0.60,<0.63", "opentelemetry-instrumentation-openai-v2>=2.0b0,<2.5",
         "opentelemetry-instrumentation-openai-agents-v2>=0.1,<0.2", "opentelemetry-util-genai<1.2"],
        ["test_langgraph.py", "test_openai_agents.py", "test_foreign_conventions.py", "test_suite_runs.py",
         "test_ui_frameworks.py"],
    ),
}


def _session(name: str, requirements: list[str], tests: list[str]):
    @nox.session(name=name)
    def run(session: nox.Session) -> None:
        session.install("-e", ".[collector,test]", *requirements)
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *[f"tests/integrations/{t}" for t in tests], *session.posargs)

    return run


# `nox` alone runs the framework test sessions; `latest` and the benchmarks are run by name (`nox -s latest`).
nox.options.sessions = list(ENVIRONMENTS)

for _name, (_requirements, _tests) in ENVIRONMENTS.items():
    globals()[f"session_{_name}"] = _session(_name, _requirements, _tests)

# Upper bounds that `latest` keeps: releases past them are known not to work (see the comments above).
KNOWN_BREAKS = {"ag2": "<1", "mcp": "<2", "opentelemetry-util-genai": "<1.2"}


def newest(requirement: str) -> str:
    """The requirement without its tested upper bound (a known break's bound stays)."""
    req = Requirement(requirement)
    kept = [str(s) for s in req.specifier if s.operator not in ("<", "<=")]
    kept += [KNOWN_BREAKS[req.name]] if req.name in KNOWN_BREAKS else []
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{','.join(kept)}"


@nox.session(name="latest")
@nox.parametrize("group", list(ENVIRONMENTS))
def latest(session: nox.Session, group: str) -> None:
    """Each framework group's tests on the newest releases (past the tested ranges), to find breaks on purpose."""
    requirements, tests = ENVIRONMENTS[group]
    session.install("--upgrade", "-e", ".[collector,test]", *map(newest, requirements))
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                *[f"tests/integrations/{t}" for t in tests], *session.posargs)


# environment -> frameworks with a suite driver (agenttrace/suite/drivers/) that it can run
SUITE_FRAMEWORKS = {"langgraph_openai_agents": ["langgraph", "openai_agents"], "autogen": ["autogen"], "ag2": ["ag2"], "crewai": ["crewai"],
                    "smolagents_pydantic_ai_llama_index": ["smolagents", "pydantic_ai", "llama_index"]}


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


@nox.session(name="phoenix_verdict")
def phoenix_verdict(session: nox.Session) -> None:
    """A collector's verdict exported as OTLP into the run's trace in Arize Phoenix (on loopback), read back from
    Phoenix's database. Run by name (`nox -s phoenix_verdict`): arize-phoenix is a large install."""
    session.install("-e", ".[collector,test]", "arize-phoenix")
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integrations/test_phoenix_verdict.py",
                *session.posargs)
