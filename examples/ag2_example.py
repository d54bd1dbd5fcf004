"""AG2 (classic autogen API) traced by agenttrace: a GroupChat whose terminal runs the coder's code.

Runs offline by default (a scripted local LLM and a temporary collector); set OPENAI_BASE_URL /
OPENAI_API_KEY / AGENTTRACE_MODEL for a real OpenAI-compatible endpoint and AGENTTRACE_ENDPOINT
for your own collector.

    pip install agenttrace "ag2[openai]>=0.10,<1"
    python examples/ag2_example.py
"""

from __future__ import annotations

import tempfile

import agenttrace
from agenttrace.demo.env import example_env

TASK = "What is 17 * 23? Compute it with Python."


def _scripted(body):
    system = body["messages"][0].get("content") or ""
    if "planner" in system:
        return "Plan: the coder writes Python that prints 17 * 23, the terminal runs it."
    return "```python\nprint(17 * 23)\n```"


def main() -> None:
    from autogen import ConversableAgent, GroupChat, GroupChatManager, UserProxyAgent

    with example_env("ag2", _scripted) as env:
        cfg = {"config_list": [{"model": env.model, "api_key": env.api_key, "base_url": env.base_url}],
               "cache_seed": None}
        planner = ConversableAgent("planner", system_message="You are the planner. Plan briefly.", llm_config=cfg)
        coder = ConversableAgent("coder", system_message="You are the coder. Reply with one python code block.",
                                 llm_config=cfg)
        terminal = UserProxyAgent("Computer_terminal", human_input_mode="NEVER", default_auto_reply="",
                                  code_execution_config={"work_dir": tempfile.mkdtemp(), "use_docker": False})
        chat = GroupChat([terminal, planner, coder], messages=[], max_round=4, speaker_selection_method="round_robin")
        manager = GroupChatManager(chat, llm_config=cfg)
        with agenttrace.run("ag2-example", task=TASK, expected="391") as run:
            terminal.initiate_chat(manager, message=TASK, max_turns=1)
            run.finish(chat.messages[-1]["content"])
        env.show(run.run_id)


if __name__ == "__main__":
    main()
