"""The sandbox's provider key: ECDSA P-256 over SHA-256, DER signatures in base64.

The key is generated on first start and kept as PEM under the state directory, so signatures
issued before a restart still verify after it. Clients verify with `GET /_sandbox/public-key`.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

_ALGORITHM = ec.ECDSA(hashes.SHA256())


class Signer:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        self._public_key = private_key.public_key()

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{path} is not an EC private key")
            return cls(key)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key)

    def public_pem(self) -> bytes:
        return self._public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, text: str) -> str:
        return base64.b64encode(self._private_key.sign(text.encode("ascii"), _ALGORITHM)).decode()

    def verify(self, text: str, signature: str) -> bool:
        try:
            der = base64.b64decode(signature, validate=True)
            self._public_key.verify(der, text.encode("ascii"), _ALGORITHM)
        except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
            return False
        return True
