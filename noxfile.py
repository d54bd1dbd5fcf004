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
}


def _session(name: str, requirements: list[str], tests: list[str]):
    @nox.session(name=name, python=False if nox.options.default_venv_backend == "none" else None)
    def run(session: nox.Session) -> None:
        session.install("-e", ".[collector,test]", *requirements)
        session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    *[f"tests/integrations/{t}" for t in tests], *session.posargs)

    return run


for _name, (_requirements, _tests) in ENVIRONMENTS.items():
    globals()[f"session_{_name}"] = _session(_name, _requirements, _tests)
