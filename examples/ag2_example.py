"""AG2 (classic autogen API) traced by agenttrace: a GroupChat whose terminal runs the coder's code.

Runs against a scripted local LLM by default; set OPENAI_BASE_URL / OPENAI_API_KEY /
AGENTTRACE_MODEL to use a real OpenAI-compatible endpoint. Spans go to the collector at
AGENTTRACE_ENDPOINT (default http://127.0.0.1:4318).

    pip install agenttrace "ag2[openai]>=0.10,<1"
    python examples/ag2_example.py
"""

from __future__ import annotations

import os
import tempfile

import agenttrace

TASK = "What is 17 * 23? Compute it with Python."


def _scripted(body):
    system = body["messages"][0].get("content") or ""
    if "planner" in system:
        return "Plan: the coder writes Python that prints 17 * 23, the terminal runs it."
    return "```python\nprint(17 * 23)\n```"


def main() -> None:
    agenttrace.instrument(service_name="ag2-example", frameworks=["ag2"])
    from autogen import ConversableAgent, GroupChat, GroupChatManager, UserProxyAgent

    scripted = None
    base_url, api_key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
    model = os.environ.get("AGENTTRACE_MODEL", "gpt-4o-mini")
    if not base_url and not api_key:
        from agenttrace.testing.scripted_llm import ScriptedLLM

        scripted = ScriptedLLM(_scripted).start()
        base_url, api_key, model = scripted.base_url, "test", "scripted-model"
    entry = {"model": model, "api_key": api_key or "test"}
    if base_url:
        entry["base_url"] = base_url
    cfg = {"config_list": [entry], "cache_seed": None}
    try:
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
        print("run id:", run.run_id)
    finally:
        agenttrace.uninstrument()
        if scripted is not None:
            scripted.stop()


if __name__ == "__main__":
    main()
