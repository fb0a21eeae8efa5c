"""make mutate: mutation testing of propsync's core with mutmut.

mutmut names a mutant after the module path of its file, and the tests import
the layer's package as ``propsync``, so mutmut runs in a staging copy of the
repository (``.mutate/``, rebuilt on every run) where the package sits at the
top as ``propsync/``. Only the modules and functions in SCOPE are mutated, and
each mutant runs only the tests that reach its function (mutmut records
which, in one traced run of TESTS first). DynamoDB tests run on moto alone:
both engines answer the same conditions, and one halves the time.

Prints the kill rate and every surviving mutant with its diff, and exits 1 if
fewer than MIN_KILL_RATE of the mutants were killed. The figures and the
reason each survivor is harmless are in docs/RELIABILITY.md.

Usage: python scripts/mutate.py [--max-children N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / ".mutate"
PACKAGE = REPO / "layers" / "propsync" / "propsync"

# module -> the functions mutated in it ("*": all of them)
SCOPE: dict[str, tuple[str, ...]] = {
    "merge_rule": ("*",),
    "timestamps": ("*",),
    "canonical_json": ("*",),
    "properties": ("*",),
    "identity": ("*",),
    "merging": ("*",),
    "access": ("*",),
    # the condition builder: merge_rule.wins as DynamoDB conditions, and how
    # a command is cut into requests
    "store.conditional": ("conditional_update", "chunks"),
}

# The fastest tests that reach the scope: its unit tests, and the store and
# identity tests against a DynamoDB engine.
TESTS = (
    "tests/unit/test_merge_rule.py",
    "tests/unit/test_timestamps.py",
    "tests/unit/test_arrival_time.py",
    "tests/unit/test_canonical_json.py",
    "tests/unit/test_properties.py",
    "tests/unit/test_identity_rules.py",
    "tests/unit/test_access.py",
    "tests/integration/test_store_writes.py",
    "tests/integration/test_store_condition.py",
    "tests/integration/test_store_limits.py",
    "tests/integration/test_store_matches_merge_rule.py",
    "tests/integration/test_identity.py",
    "tests/integration/test_merging.py",
    "tests/integration/test_soft_id_cap.py",
    "tests/unit/test_resolution_plan.py",
    "tests/integration/test_customer_updates.py",
)
ENGINE_FILTER = ("-k", "not dynalite")

MIN_KILL_RATE = 0.90
# mutmut's exit codes of a mutant's test run: killed means a test failed
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}


def outcome(code: int) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    return "survived" if code == 0 else "other"  # other: no test reached it, ...


def mutant_globs() -> list[str]:
    globs = []
    for module, functions in SCOPE.items():
        for function in functions:
            name = "*" if function == "*" else f"x_{function}__mutmut_*"
            globs.append(f"propsync.{module}.{name}")
    return globs


def stage() -> None:
    """A copy of what the tests need, with the package at the top."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, STAGE / "propsync", ignore=ignore)
    for folder in ("tests", "local", "events", "functions"):
        shutil.copytree(REPO / folder, STAGE / folder, ignore=ignore)
    shutil.copy2(REPO / "template.yaml", STAGE / "template.yaml")

    pyproject = (REPO / "pyproject.toml").read_text()
    layer_path = 'pythonpath = ["layers/propsync", "local"]'
    if layer_path not in pyproject:
        raise SystemExit(f"mutate: pyproject.toml no longer has {layer_path}; update {__file__}")
    pyproject = pyproject.replace(layer_path, 'pythonpath = ["local"]')  # propsync is at the top
    settings = {
        "source_paths": ["propsync"],
        "only_mutate": [f"propsync/{module.replace('.', '/')}.py" for module in SCOPE],
        "also_copy": ["local/", "events/", "functions/", "template.yaml"],
        "pytest_add_cli_args_test_selection": [*TESTS, *ENGINE_FILTER],
        # every run starts from a fresh copy: nothing to compare with git
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    (STAGE / "pyproject.toml").write_text(pyproject + "\n".join(lines) + "\n")


def results() -> dict[str, int]:
    """Exit code of every mutant in scope (from mutmut's .meta files)."""
    codes: dict[str, int] = {}
    globs = mutant_globs()
    for meta in sorted((STAGE / "mutants" / "propsync").glob("*.py.meta")):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            if any(fnmatch(name, pattern) for pattern in globs):
                codes[name] = code
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="keep .mutate/ for `mutmut show`")
    args = parser.parse_args()

    stage()
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", str(args.max_children), *mutant_globs()]
    run = subprocess.run(command, cwd=STAGE, check=False)
    codes = results()
    if run.returncode != 0 or not codes:
        print(f"mutate: mutmut failed (exit {run.returncode}); its files are in {STAGE}")
        return 1

    counts = Counter(outcome(code) for code in codes.values())
    survivors = sorted(name for name, code in codes.items() if code not in KILLED | TIMEOUT)
    for name in survivors:
        shown = subprocess.run(
            [str(mutmut), "show", name], cwd=STAGE, capture_output=True, text=True, check=False
        )
        print(shown.stdout.rstrip() or f"# {name}: exit {codes[name]}")
    total = len(codes)
    killed = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught
    rate = killed / total
    print(
        f"\nmutate: {total} mutants, {counts['killed']} killed, {counts['timeout']} timed out, "
        f"{counts['survived']} survived, {counts['other']} other: {rate:.1%} killed "
        f"(at least {MIN_KILL_RATE:.0%} required)"
    )
    for module in SCOPE:
        in_module = [c for n, c in codes.items() if n.startswith(f"propsync.{module}.")]
        dead = sum(1 for c in in_module if c in KILLED | TIMEOUT)
        print(f"  {module}: {dead}/{len(in_module)} killed")
    if not args.keep:
        shutil.rmtree(STAGE)
    return 0 if rate >= MIN_KILL_RATE else 1


if __name__ == "__main__":
    sys.exit(main())
