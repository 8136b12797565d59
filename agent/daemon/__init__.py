"""The daemon's wiring: `pos-agent run` (main.py), its listeners, spool and background jobs.

Imported before anything else of the daemon, so the one import rule below holds for it: httpx
imports its command-line client (rich, pygments, click: ~4 MB of a ~60 MB daemon) whenever those
packages are installed. A development venv has them for the test tools; the package never
installs them, and the daemon never runs that client. Refusing the import here keeps the
daemon's memory the same in a checkout, where the benchmark measures it, as on a register.
"""

import sys

# None in sys.modules is the import system's own "this import fails" (typeshed does not know it).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
