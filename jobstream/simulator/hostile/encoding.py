"""Hostile kinds that exist only as bytes: no Python value dumps to them.

Each serves JSON text written by hand and says what that text means to the pipeline, which
decodes bytes with errors="replace", reads lone surrogates as U+FFFD, NaN and Infinity as null,
and keeps an integer too long for Python's json as its digits.
"""

from typing import Any

from jobstream.simulator.hostile.base import Base, Spoiled, marker, spliced_json
from jobstream.simulator.policy import PUBLISHED

HUGE_INT_DIGITS = 5000


def text_nan(base: Base) -> Spoiled:
    literals = {"acb241": b"NaN", "Experience": b"Infinity", "aac011": b"-Infinity"}
    slots = {key: marker(i) for i, key in enumerate(literals)}
    raw = {f'"{slots[key]}"': literal for key, literal in literals.items()}
    row = spliced_json(base.with_fields(**slots), raw)
    return Spoiled(row, PUBLISHED, meaning=base.with_fields(**dict.fromkeys(literals)))


def lone_surrogate(base: Base) -> Spoiled:
    # Truncated scraped text ends inside a pair; a whole escaped pair is the emoji it encodes.
    f = base.fields
    served = base.with_fields(
        aca112=f"{f['aca112']}{marker(0)}",
        AAB004=f"{marker(1)}{f['AAB004']}",
        acb22a=f"截断{marker(2)}的描述{marker(3)}",
    )
    return _in_strings(
        served,
        {
            marker(0): (b"\\ud800", "\ufffd"),
            marker(1): (b"\\ud83d\\ude00", "\U0001f600"),
            marker(2): (b"\\udc00", "\ufffd"),
            marker(3): (b"\\ude00\\ud83d", "\ufffd\ufffd"),
        },
    )


def invalid_utf8(base: Base) -> Spoiled:
    f = base.fields
    served = base.with_fields(aca112=f"{f['aca112']}{marker(0)}", acb22a=f"前半段{marker(1)}后半段")
    chunks = (b"\xff\xfe", b"\x80")
    return _in_strings(
        served,
        {marker(i): (c, c.decode("utf-8", errors="replace")) for i, c in enumerate(chunks)},
    )


def huge_int(base: Base) -> Spoiled:
    digits = ("9876543210" * (HUGE_INT_DIGITS // 10 + 1))[:HUGE_INT_DIGITS]
    served = base.with_fields(acb241=marker(0))
    row = spliced_json(served, {f'"{marker(0)}"': digits.encode()})
    return Spoiled(row, PUBLISHED, meaning=base.with_fields(acb241=digits))


def _in_strings(served: dict[str, Any], chunks: dict[str, tuple[bytes, str]]) -> Spoiled:
    """Serve `served` with each marker (inside a string) replaced by raw bytes; the meaning has
    the marker replaced by what those bytes decode to."""
    meaning = dict(served)
    for key, value in served.items():
        if isinstance(value, str):
            for text, (_, meant) in chunks.items():
                value = value.replace(text, meant)
            meaning[key] = value
    row = spliced_json(served, {text: raw for text, (raw, _) in chunks.items()})
    return Spoiled(row, PUBLISHED, meaning=meaning)
