"""A journal entry's detail in fewer bytes (`journal.detail_packed`, schema 14).

Five to nine entries a receipt carry small details made of the same few keys (`{"job_id":12}`,
`{"from":"pending"}`) and, on the freeze, a SHA-256 in 64 hex characters. Stored as text they
were ~30 bytes an entry. Packed: each JSON string of exactly 64 lowercase hex digits becomes a
NUL character (canonical JSON escapes every control character, so a NUL never occurs in it), the
text is raw deflate with the preset dictionary below, and the 32 bytes of each digest follow
the deflate stream in order. Unpacking gives back the exact text, which is what is hashed and
checked for canonical form, so the chain does not depend on this codec.

Format 1 is `_FORMAT_1` + stream + digests. The dictionary is never changed: entries packed with
it must unpack for as long as they are live (the archive stores the text); a better one would be
format 2.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

from offline_store.errors import PackedDataDamaged

_FORMAT_1 = b"\x01"
_DIGEST = re.compile(r'"([0-9a-f]{64})"')
_PLACEHOLDER = '"\x00"'
_DICTIONARY_1 = (
    b'{"reason":"paper out"}{"copy":true}{"signature_id":{"from":"delayed"}{"from":"reserved",'
    b'"previous_request_id":"sign:","to":"reserved"}{"job_id":{"from":"pending"}'
    b'{"from":"reserved","payload_sha256":"\x00"}{"payload_sha256":"\x00"}'
)


def pack_detail(text: str) -> bytes | None:
    """The packed form of a canonical detail text, None when it would not be shorter."""
    digests = [bytes.fromhex(match) for match in _DIGEST.findall(text)]
    squeezed = _DIGEST.sub(_PLACEHOLDER, text).encode("utf-8")
    packed = _FORMAT_1 + _deflate(squeezed) + b"".join(digests)
    return packed if len(packed) < len(text.encode("utf-8")) else None


@lru_cache(maxsize=256)
def _deflate(squeezed: bytes) -> bytes:
    """Raw deflate with the preset dictionary: a pure function of the text, remembered for the
    texts that recur. With its digests taken out, a sale's freeze and accept entries are the
    same text on every sale (`{"payload_sha256":"\x00"}`, `{"from":"pending"}`), and setting up
    a compressor with a preset dictionary costs more than compressing a few bytes."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=_DICTIONARY_1)
    return deflate.compress(squeezed) + deflate.flush()


def unpack_detail(packed: bytes) -> str:
    """The exact text `pack_detail` was given."""
    if packed[:1] != _FORMAT_1:
        raise PackedDataDamaged("a journal detail packed in an unknown format")
    inflate = zlib.decompressobj(-15, zdict=_DICTIONARY_1)
    try:
        squeezed = inflate.decompress(packed[1:]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise PackedDataDamaged("a journal detail does not unpack") from exc
    digests = inflate.unused_data
    parts = squeezed.split(_PLACEHOLDER)
    if not inflate.eof or len(digests) != 32 * (len(parts) - 1):
        raise PackedDataDamaged("a journal detail does not unpack")
    text = parts[0]
    for index, part in enumerate(parts[1:]):
        text += f'"{digests[32 * index : 32 * index + 32].hex()}"' + part
    return text
