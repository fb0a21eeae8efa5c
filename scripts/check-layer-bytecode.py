"""Check a built layer (sam build) ships hash-checked bytecode for every module.

Lambda mounts layers read-only under /opt and SAM's zip dates every file
1980-01-01, so a module without a .pyc, or with a timestamp-based one, is
compiled again at every cold start (layers/propsync/Makefile). Usage:
    python scripts/check-layer-bytecode.py .aws-sam/build/PropsyncLayer/python
Exit 1, naming the modules, if any .py lacks a valid hash-based .pyc for the
running Python (3.13, as the runtime).
"""

import importlib.util
import sys
from pathlib import Path

FLAGS_CHECKED_HASH = 0b11  # PEP 552: hash-based, check_source


def problems(root: Path) -> list[str]:
    found = []
    for source in sorted(root.rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.is_file():
            found.append(f"{source.relative_to(root)}: no {cached.name}")
            continue
        header = cached.read_bytes()[:16]
        if header[:4] != importlib.util.MAGIC_NUMBER:
            found.append(f"{source.relative_to(root)}: compiled by another Python")
        elif int.from_bytes(header[4:8], "little") != FLAGS_CHECKED_HASH:
            found.append(f"{source.relative_to(root)}: not hash-checked bytecode")
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            found.append(f"{source.relative_to(root)}: bytecode of another source")
    return found


def main() -> int:
    root = Path(sys.argv[1])
    modules = list(root.rglob("*.py"))
    if not modules:
        print(f"{root}: no Python modules; was the layer built?", file=sys.stderr)
        return 1
    found = problems(root)
    for problem in found[:20]:
        print(problem, file=sys.stderr)
    if found:
        print(f"{len(found)} of {len(modules)} modules compile at cold start", file=sys.stderr)
        return 1
    print(f"{len(modules)} modules, each with hash-checked bytecode")
    return 0


if __name__ == "__main__":
    sys.exit(main())
