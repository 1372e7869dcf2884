"""Process-independent hashing, so every row is the same in every process and run."""

import hashlib


def stable_int(*parts: object) -> int:
    # hash() is salted per process; rows must be identical across processes and runs.
    text = ":".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
