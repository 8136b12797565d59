"""QR codes as Pillow images, shared by the PNG preview and the raster ESC/POS fallback.

Error correction M, the usual level for URLs (docs/provider.md §12). The mask pattern is fixed:
every mask is valid per ISO 18004, and choosing the "best" one costs pure-Python qrcode ~25 ms
per receipt.
"""

from __future__ import annotations

from functools import lru_cache

import qrcode
from PIL import Image

QUIET_ZONE_MODULES = 4
_MASK_PATTERN = 2


@lru_cache(maxsize=64)
def _modules(data: str) -> tuple[tuple[bool, ...], ...]:
    """The module matrix; falls back to plain byte mode where qrcode's segment optimiser fails.

    qrcode 8.2 raises `ValueError: glog(0)` for some mixed numeric data (long digit runs in a
    URL); a receipt must still get its QR, and byte mode always encodes.
    """
    try:
        return _encode(data, optimize=20)
    except ValueError:
        return _encode(data, optimize=0)


def _encode(data: str, *, optimize: int) -> tuple[tuple[bool, ...], ...]:
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=_MASK_PATTERN
    )
    code.add_data(data, optimize=optimize)
    code.make(fit=True)
    return tuple(tuple(bool(cell) for cell in row) for row in code.get_matrix())


def qr_image(data: str, module_px: int, max_px: int, *, ink: int = 0) -> Image.Image:
    """A 1-bit image with the standard 4-module quiet zone, shrunk to fit `max_px` if needed.

    `ink` is the pixel value of dark modules: 0 (black on white) for previews, 1 for ESC/POS
    raster data, where a set bit burns a dot.
    """
    matrix = _modules(data)
    count = len(matrix) + 2 * QUIET_ZONE_MODULES
    module_px = max(1, min(module_px, max_px // count))
    paper = 1 - ink
    small = Image.new("1", (count, count), paper)
    quiet = [paper] * QUIET_ZONE_MODULES
    values = [paper] * (count * QUIET_ZONE_MODULES)
    for row in matrix:
        values += quiet + [ink if dark else paper for dark in row] + quiet
    values += [paper] * (count * QUIET_ZONE_MODULES)
    small.putdata(values)
    size = count * module_px
    return small.resize((size, size), Image.Resampling.NEAREST)
