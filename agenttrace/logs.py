"""Structured logging for agenttrace: structlog events carried by the standard ``logging`` module.

Inside an app, agenttrace is a library: it emits records on the ``agenttrace.*`` loggers, with each
event's fields as record attributes (``extra``), and configures neither structlog nor the root logger;
the app's logging set-up decides where they go (with none, Python prints only warnings and errors).
agenttrace's own processes (the CLI, the collector) call ``configure()``: one stderr handler on the
``agenttrace`` logger, human-readable on a TTY and JSON lines otherwise.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

_HANDLER_NAME = "agenttrace"


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger writing to ``logging.getLogger(name)``; ``name`` starts with ``agenttrace``."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars,
                    structlog.stdlib.render_to_log_kwargs],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def configure(level: str | None = None, json: bool | None = None) -> None:
    """Sends agenttrace's records to stderr (for agenttrace's own processes, not for apps that import it).

    ``level`` defaults to ``AGENTTRACE_LOG_LEVEL`` (info); JSON when ``json`` is true,
    ``AGENTTRACE_LOG_FORMAT=json``, or stderr is not a terminal.
    """
    level = (level or os.environ.get("AGENTTRACE_LOG_LEVEL", "info")).upper()
    if json is None:
        json = os.environ.get("AGENTTRACE_LOG_FORMAT", "").lower() == "json" or not sys.__stderr__.isatty()
    render = ([structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if json
              else [structlog.dev.ConsoleRenderer(colors=False)])
    handler = logging.StreamHandler(sys.__stderr__)  # the process's stderr, never a test runner's stand-in
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.stdlib.ExtraAdder(), structlog.processors.TimeStamper(fmt="iso")],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    ))
    logger = logging.getLogger("agenttrace")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
