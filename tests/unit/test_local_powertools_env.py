"""make run's functions publish their metrics: Powertools' namespace is set
before any propsync module creates the Metrics (at the local stack's own
import), whatever the developer's shell holds. Without it every handler that
adds a metric fails as it returns, and make run answers 502."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_stack_sets_the_metrics_namespace_before_propsync_is_imported():
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers" / "propsync"), str(ROOT / "local")])
    code = (
        "import propsync_local.stack\n"
        "from propsync.observability import metrics\n"
        "print(metrics.namespace, metrics.service)\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert answer.stdout.split() == ["propsync", "propsync"]
