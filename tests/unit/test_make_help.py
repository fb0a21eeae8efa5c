"""`make help` (also plain `make`) lists every target the Makefile has."""

import re
import subprocess

from propsync_local.cfn_template import REPO_ROOT


def phony_targets() -> set[str]:
    makefile = (REPO_ROOT / "Makefile").read_text()
    [line] = re.findall(r"^\.PHONY:(.*)$", makefile, re.M)
    return set(line.split())


def test_make_help_lists_every_target():
    listed = subprocess.run(
        ["make", "--no-print-directory", "-s", "help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert set(re.findall(r"^make ([\w-]+)", listed, re.M)) == phony_targets()


def test_every_named_rule_of_the_makefile_is_a_phony_target():
    makefile = (REPO_ROOT / "Makefile").read_text()
    rules = set(re.findall(r"^([\w-]+):", makefile, re.M))
    assert rules == phony_targets()
