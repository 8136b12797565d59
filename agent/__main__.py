"""`python -m agent` is `pos-agent`."""

import sys

from agent.cli import main

sys.exit(main())
