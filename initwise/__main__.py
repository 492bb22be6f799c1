"""``python -m initwise``: the same as the ``initwise`` command."""

import sys

from initwise.cli import main

if __name__ == "__main__":
    sys.exit(main())
