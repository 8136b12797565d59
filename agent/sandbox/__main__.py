"""`python -m agent.sandbox --state DIR --api-key-file F --issuer-vat V [--port N]`."""

import sys

from agent.sandbox.command import main

sys.exit(main())
