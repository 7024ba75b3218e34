"""The short load test: bench/load.py --quick against the Procfile's command must store
every accepted message once with a finished reply, with zero 5xx (timings not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(240)
def test_a_short_load_run_stores_every_message_once_with_no_server_error(database_url,
                                                                        tmp_path):
    figures_path = tmp_path / "load.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--quick",
                          "--database-url", database_url, "--json", str(figures_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=220)
    assert figures_path.exists(), run.stdout + run.stderr
    figures = json.loads(figures_path.read_text())
    assert figures["messages_accepted"] > figures["users"]
    assert figures["messages_stored"] == figures["messages_accepted"]
    assert figures["reply_statuses"] == {"complete": figures["messages_accepted"]}
    assert figures["server_errors"] == 0 and figures["errors"] == {}
    assert figures["problems"] == {} and figures["unfinished_people"] == 0
    assert run.returncode == 0, run.stdout + run.stderr
