"""What the pipeline must make of a row, as the simulator's ground truth states it.

Only the text fields are computed here; the date rules are encoded by the row kinds that break
them (`hostile/`), since the simulator writes every date itself and knows what it means.
"""

import json
from collections.abc import Mapping
from typing import Final, Literal

# The field list (which source key becomes which output name, seed §6.1) is declared once, on
# `Job`. How each value becomes text (`text` below) is the simulator's own on purpose: it is
# the ground truth the pipeline's `text_value` is tested against, so it must not be derived
# from the code it checks.
from jobstream.transform.mapping import TEXT_FIELDS

Expect = Literal["published", "filtered", "rejected"]
PUBLISHED: Final = "published"
FILTERED: Final = "filtered"
REJECTED: Final = "rejected"

# The reject's field when the row as a whole is at fault (not an object, too large, unparseable).
ROW: Final = "row"


def published_text(row: Mapping[str, object]) -> dict[str, str]:
    """The text fields the pipeline publishes for `row`, under their output names.

    `row` holds what the served JSON means once decoded the pipeline's way: invalid bytes and
    lone surrogates already U+FFFD, NaN and Infinity already None, a huge integer its digits.
    """
    return {out: text(row.get(src)) for src, out in TEXT_FIELDS}


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
