"""One compact JSON encoder, made once, for the hot paths that write many small documents.

``json.dumps`` with options (and ``JSONEncoder.encode``) builds a new encoder, C part
included, on every call; the journal and the world store write hundreds of thousands of
records in a large run, so they keep one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def compact_encoder(*, sort_keys: bool = False, allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), sort_keys=..., allow_nan=...)``, the same
    text, without the per-call set-up (and without its check for circular values, which
    plain records cannot have)."""
    encoder = json.JSONEncoder(separators=(",", ":"), sort_keys=sort_keys, allow_nan=allow_nan)
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return encoder.encode
    # (markers, default, string encoder, indent, key and item separators, sort_keys,
    # skipkeys, allow_nan): the encoder's own options, as ``JSONEncoder.iterencode`` passes
    encode = c_make_encoder(None, encoder.default, json.encoder.encode_basestring_ascii,
                            None, ":", ",", sort_keys, False, allow_nan)
    join = "".join
    return lambda value: join(encode(value, 0))
