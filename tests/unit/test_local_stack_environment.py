"""`make run` in a fresh shell: no Powertools variable is set, unlike in the
test session (tests/conftest.py sets them), and the local stack must still give
the handlers the settings template.yaml's Globals give them in Lambda."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import propsync_local.stack  # what `python -m propsync_local.stack` imports first
from propsync.observability import logger, metrics

metrics.add_metric("Probe", "Count", 1)
metrics.flush_metrics()  # raises SchemaValidationError without a namespace
print(metrics.namespace, logger.service)
"""


def test_the_local_stack_gives_metrics_a_namespace_in_a_shell_without_powertools_settings():
    env = {name: value for name, value in os.environ.items() if not name.startswith("POWERTOOLS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "layers/propsync"), str(REPO_ROOT / "local")]
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "propsync propsync"
