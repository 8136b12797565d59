"""Receipt printing: plain receipt model → layout → ESC/POS bytes or PNG, plus printer transport.

`receipt` (the model the agent hands over) and `layout`/`blocks` import nothing heavy; the
renderers and `connections`/`status` import python-escpos, which configures logging and creates a
temp directory on import in 3.1, so this package deliberately re-exports nothing.
This package never imports `agent` or `offline_store`.
"""
