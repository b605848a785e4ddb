"""python -m harness: the same as the `goreclaim` command."""

import sys

from harness.drive.cli import main

if __name__ == "__main__":
    sys.exit(main())
