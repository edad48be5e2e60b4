"""`python -m hwcodesign` runs the CLI."""

import sys

from hwcodesign.cli import main

sys.exit(main())
