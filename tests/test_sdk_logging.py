"""agenttrace logs through the app's ``logging`` set-up: silent by default, structured records when the app asks.

Each case runs in its own interpreter, as an app would: logging configuration is global to a process.
"""

from __future__ import annotations

import json
import subprocess
import sys

INSTRUMENT = "import agenttrace\nagenttrace.instrument(endpoint='http://127.0.0.1:9', frameworks=[])\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_instrument_prints_nothing_into_an_app_without_logging_set_up():
    done = run(INSTRUMENT + "print('the app speaks')\nagenttrace.uninstrument()")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("the app speaks\n", "")


def test_an_app_that_sets_up_logging_gets_agenttrace_records_with_their_fields():
    done = run("import json, logging, sys\n"
               "class Fields(logging.Handler):\n"
               "    def emit(self, record):\n"
               "        print(json.dumps({'logger': record.name, 'event': record.getMessage(),\n"
               "                          'endpoint': getattr(record, 'endpoint', None)}))\n"
               "logging.basicConfig(level=logging.INFO, handlers=[Fields()])\n"
               + INSTRUMENT + "agenttrace.uninstrument()")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"logger": "agenttrace.setup", "event": "instrument.on", "endpoint": "http://127.0.0.1:9"} in records


def test_agenttrace_s_own_processes_write_json_lines():
    done = run("from agenttrace.logs import configure, get_logger\n"
               "configure(json=True)\n"
               "get_logger('agenttrace.collector').info('collector.http', address='http://127.0.0.1:4318')")
    line = json.loads(done.stderr)
    assert line["event"] == "collector.http" and line["address"] == "http://127.0.0.1:4318"
    assert line["level"] == "info" and line["logger"] == "agenttrace.collector" and "timestamp" in line
