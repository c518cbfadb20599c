"""Start Tapescope: `python main.py [...]` is the same as the `tapescope` command."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
