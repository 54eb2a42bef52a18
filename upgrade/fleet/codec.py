"""Small payloads: a compressing payload codec with content-addressed references.

Temporal stores every workflow input, activity argument and result in the history; it warns
at 512 KB per payload and refuses 2 MB.  A site of 10,000 hosts with 30 VMs each has a plan
and inventory of several MB.  :class:`CompactCodec` (Temporal's own mechanism, a
``PayloadCodec`` on the client and worker data converters) compresses every payload over
:data:`COMPRESS_OVER` bytes with zlib, and stores one still over :data:`REFERENCE_OVER` once,
under its SHA-256, in the fleet's payload directory beside the fleet file (shared by the
client and the workers, as the sites' state dirs are), sending only the reference: a
continue-as-new that carries the same plan again refers to the same file.

Decoding a site workflow's input also decodes its plan and inventory
(:func:`upgrade.fleet.inputs.warm`): the codec runs on the worker's event loop before the
workflow code, so the workflow finds them kept instead of spending a whole activation (and
Temporal's 2 s deadlock allowance) on them when a worker has just started.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

#: payloads at least this big are compressed
COMPRESS_OVER = 2048
#: compressed payloads at least this big are stored by reference
REFERENCE_OVER = 256 * 1024
#: decoded JSON payloads at least this big may be a site's input (plan and inventory)
WARM_OVER = 64 * 1024
ZLIB = b"binary/nsxt-zlib"
REFERENCE = b"binary/nsxt-sha256"


class CompactCodec(PayloadCodec):
    """zlib for big payloads, content-addressed files for very big ones."""

    def __init__(self, store: Path | None) -> None:
        self.store = store
        #: the last big payloads encoded and decoded (a continue-as-new carries the same
        #: site input again: compressed and hashed once)
        self._encoded: dict[bytes, Payload] = {}
        self._decoded: dict[bytes, Payload] = {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Compress (and store by reference) what is big."""
        return [self._encode(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Undo :meth:`encode`; any other payload passes unchanged."""
        return [self._decode(p) for p in payloads]

    def _encode(self, payload: Payload) -> Payload:
        raw = payload.SerializeToString()
        if len(raw) < COMPRESS_OVER:
            return payload
        if len(raw) < REFERENCE_OVER:
            return Payload(metadata={"encoding": ZLIB}, data=zlib.compress(raw, 6))
        key = hashlib.sha256(raw).digest()
        done = self._encoded.get(key)
        if done is None:
            done = self._encode_big(raw)
            _keep(self._encoded, key, done)
        return done

    def _encode_big(self, raw: bytes) -> Payload:
        packed = zlib.compress(raw, 6)
        if len(packed) < REFERENCE_OVER or self.store is None:
            return Payload(metadata={"encoding": ZLIB}, data=packed)
        digest = hashlib.sha256(packed).hexdigest()
        path = self.store / digest
        if not path.exists():
            self.store.mkdir(parents=True, exist_ok=True)
            tmp = self.store / f".{digest}.{os.getpid()}.tmp"
            tmp.write_bytes(packed)
            tmp.replace(path)
        return Payload(metadata={"encoding": REFERENCE}, data=digest.encode())

    def _decode(self, payload: Payload) -> Payload:
        encoding = payload.metadata.get("encoding", b"")
        if encoding == ZLIB:
            packed = payload.data
        elif encoding == REFERENCE:
            done = self._decoded.get(payload.data)
            if done is not None:
                return done
            digest = payload.data.decode()
            if self.store is None:
                raise ValueError(f"payload stored by reference ({digest}) but no store")
            packed = (self.store / digest).read_bytes()
            if hashlib.sha256(packed).hexdigest() != digest:
                raise ValueError(f"stored payload {digest} does not match its digest")
        else:
            return payload
        decoded = Payload()
        decoded.ParseFromString(zlib.decompress(packed))
        if encoding == REFERENCE:
            _keep(self._decoded, payload.data, decoded)
        _warm(decoded)
        return decoded


def _warm(payload: Payload) -> None:
    """If ``payload`` is a site's input, decode its plan and inventory now (kept by digest)."""
    if len(payload.data) < WARM_OVER or payload.metadata.get("encoding") != b"json/plain" \
            or b'"digest":"' not in payload.data[:1024]:  # keys sorted: digest comes early
        return
    from upgrade.fleet.inputs import warm

    try:
        doc = json.loads(payload.data)
        text, digest = doc.get("inputs"), doc.get("digest")
        if isinstance(text, str) and isinstance(digest, str):
            warm(text, digest)
    except Exception:  # only a head start: the workflow decodes the input again and meets
        return  # the same error where it is reported


def _keep(cache: dict[bytes, Payload], key: bytes, value: Payload, most: int = 4) -> None:
    cache[key] = value
    while len(cache) > most:
        del cache[next(iter(cache))]
