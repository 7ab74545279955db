"""`python -m socratic` is the `socratic` command."""

import sys

from socratic.cli import main

sys.exit(main())
