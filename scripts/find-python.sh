#!/usr/bin/env bash
# Prints the path of the Python the dev virtualenv is built with: 3.13 (the
# Lambda runtime) where the machine has it, otherwise the newest 3.11+.
# Candidates are tried by running them, because pyenv shims exist on PATH even
# for versions that are not selected, and fail only when run.
set -u
candidates=(python3.13)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for p in "$root"/versions/3.13*/bin/python3.13; do candidates+=("$p"); done
fi
candidates+=(python3.12 python3.11 python3)
for p in "${candidates[@]}"; do
  if "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then
    command -v "$p" 2>/dev/null || echo "$p"
    exit 0
  fi
done
echo "find-python: no Python 3.11 or newer found; install Python 3.13 (the Lambda runtime) or 3.11+" >&2
exit 1
