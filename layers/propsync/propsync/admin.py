"""`python -m propsync.admin`: the `propsync` command under its former name,
so that scripts written for it keep working (propsync.cli)."""

import sys

from propsync.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
