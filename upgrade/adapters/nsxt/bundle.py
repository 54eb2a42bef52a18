"""The upgrade bundle for the ``nsxt`` adapter: upload once, find it again after any interruption.

A bundle is several GB and its upload, extraction and verification take long,
so an orchestrator that was killed (or whose upload request timed out) must
not upload it again: :meth:`BundleUpload.find` looks for the upload the
manager already has, by

1. the bundle id this adapter remembered (in memory and in the state
   directory's ``nsxt-adapter.json``),
2. the summary's ``upgrade_bundle_file_name`` (the last bundle that succeeded)
   (VMware's API has no list of bundles: ``GET /upgrade/bundles`` exists in no version),

and reports its ``upload-status`` (UPLOADING, VERIFYING, SUCCESS, FAILED).
Only a bundle the manager does not have, or one that FAILED, is uploaded.

An orchestrator killed after the manager accepted its upload but before it kept the
id finds neither: VMware's API names no upload in progress (2.3 and 2.5.1: the
summary carries only the last bundle that succeeded, upload-status and
``cancel_upload`` need the id, and error 30110's ApiError body carries none).  The
upload it starts again is refused with 30110 ("already in progress"); that is no
failure: :meth:`BundleUpload.start` returns, and :meth:`BundleUpload.status` reports
the wait as running.  Each poll reads the summary, which names the bundle once that
upload succeeded (done: nothing uploaded twice); only a POST can tell that it failed,
so every :data:`BUSY_RECHECK_S` (clock seconds) the status is NOT_STARTED and the
engine starts the step again: refused again (still busy), or accepted (it failed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from upgrade.adapters.nsxt.http import NsxtClient, NsxtHttpError, nsx_version
from upgrade.adapters.nsxt.status_enums import BUNDLE_UPLOAD
from upgrade.clock import Clock
from upgrade.core.engine.messages import OpState
from upgrade.core.engine.outcome import OpStatus
from upgrade.errors import AdapterError

log = structlog.get_logger(__name__)

STATE_FILE = "nsxt-adapter.json"

#: NSX error code of ``POST /upgrade/bundles`` while another upload is in progress
UPLOAD_IN_PROGRESS = 30110
#: while the manager is busy with an upload it names no id for, the upload is tried again
#: (each try sends the whole bundle) this many clock seconds after it was last refused
BUSY_RECHECK_S = 900.0


class AdapterMemory:
    """What the adapter must remember across restarts (bundle id, evacuation moves)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / STATE_FILE if state_dir is not None else None
        self.data: dict[str, Any] = {"bundle_id": None, "upload_busy": False, "moves": {}}
        if self.path is not None and self.path.is_file():
            try:
                self.data.update(json.loads(self.path.read_text()))
            except (ValueError, OSError) as exc:
                log.warning("nsxt.memory_unreadable", path=str(self.path), error=str(exc))

    def remember(self, **values: Any) -> None:
        """Update and write durably (temporary file, fsync, rename)."""
        self.data.update(values)
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w") as out:
            json.dump(self.data, out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)


class BundleUpload:
    """Upload (by file or URL) and follow one upgrade bundle."""

    def __init__(self, client: NsxtClient, memory: AdapterMemory, target: str, *,
                 path: Path | None, url: str | None, timeout_s: float,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock
        #: when (clock) the upload is tried again while the manager is busy; None: now
        self.busy_until: float | None = None
        self.memory = memory
        self.target = target
        self.path = path
        self.url = url
        self.timeout_s = timeout_s
        source = urlsplit(url).path if url else str(path or "")
        self.name = source.rstrip("/").rsplit("/", 1)[-1]

    async def find(self) -> tuple[str, dict[str, Any]] | None:
        """The latest upload of this bundle the manager knows: (id, its upload status)."""
        ids = [str(self.memory.data.get("bundle_id") or "")]
        for bundle_id in (i for i in ids if i):
            try:
                status = await self.client.get(f"/upgrade/bundles/{bundle_id}/upload-status")
            except NsxtHttpError as exc:
                if exc.status == 404:
                    continue
                raise
            return bundle_id, status
        summary = await self.client.get("/upgrade/summary")
        if self.name and summary.get("upgrade_bundle_file_name") == self.name:
            return "", {"status": "SUCCESS", "detailed_status": "the manager's last bundle"}
        return None

    async def start(self) -> None:
        """Upload unless the manager has this bundle uploading, verifying or verified."""
        found = await self.find()
        if found is not None and _kept(found[1].get("status")):
            log.info("nsxt.bundle_found", bundle_id=found[0], status=found[1].get("status"))
            return
        try:
            body = await self._upload()
        except NsxtHttpError as exc:
            if exc.error_code != UPLOAD_IN_PROGRESS:
                raise
            # an upload this adapter cannot name (its id was lost in a crash) is running:
            # wait for it to end (status() says NOT_STARTED until then), then look again
            if self.clock is not None:
                now = self.clock.now()
                self.busy_until = now + BUSY_RECHECK_S
                if self.memory.data.get("upload_busy_since") is None:
                    self.memory.remember(upload_busy_since=now)
            self.memory.remember(upload_busy=True)
            log.info("nsxt.bundle_upload_busy", bundle=self.name, error=str(exc))
            return
        bundle_id = str((body or {}).get("bundle_id", ""))
        self.memory.remember(bundle_id=bundle_id, upload_busy=False, upload_busy_since=None)
        self.busy_until = None
        log.info("nsxt.bundle_upload_started", bundle_id=bundle_id, bundle=self.name)

    async def _upload(self) -> Any:
        """``POST /upgrade/bundles``: by URL, or the file (``?action=upload``)."""
        if self.url:
            return await self.client.post("/upgrade/bundles", {"url": self.url})
        if self.path is None:
            raise AdapterError("no upgrade bundle: the playbook needs bundle.path or bundle.url")
        try:
            with self.path.open("rb") as stream:
                return await self.client.upload("/upgrade/bundles", self.name, stream,
                                                self.timeout_s, action="upload")
        except OSError as exc:
            raise AdapterError(f"cannot read the upgrade bundle {self.path}: {exc}") from exc

    async def status(self) -> OpStatus:
        """Upload status; done only when verified and carrying the playbook's target."""
        found = await self.find()
        if found is None:
            if self.memory.data.get("upload_busy"):
                busy = (f"the manager is busy with an upload it gives no id for (error "
                        f"{UPLOAD_IN_PROGRESS}): waiting for it to end")
                since = self.memory.data.get("upload_busy_since")
                if (self.clock is not None and isinstance(since, int | float)
                        and self.clock.now() - since > self.timeout_s):
                    # the wait has its limit too: the upload's own timeout, counted from
                    # the first refusal (each restart of the step would reset the engine's)
                    return OpStatus(OpState.FAILED, (
                        f"{busy} for {int(self.clock.now() - since)} s, longer than the "
                        f"upload's timeout ({int(self.timeout_s)} s); check the upload in "
                        "the manager's Upgrade Coordinator (or restart its upgrade "
                        "coordinator service), then `nsxt-upgrade resume --retry-failed`"))
                if (self.clock is not None and self.busy_until is not None
                        and self.clock.now() < self.busy_until):
                    return OpStatus(OpState.RUNNING, busy)
                return OpStatus(OpState.NOT_STARTED, f"{busy}; trying {self.name} again")
            return OpStatus(OpState.NOT_STARTED, f"the manager has no upload of {self.name}")
        bundle_id, status = found
        if self.memory.data.get("upload_busy"):
            # the upload it waited for is found
            self.memory.remember(upload_busy=False, upload_busy_since=None)
        word, detail = str(status.get("status")), str(status.get("detailed_status") or "")
        state = BUNDLE_UPLOAD.read(status.get("status"))
        if state is OpState.FAILED:
            return OpStatus(state, f"upgrade bundle {self.name} failed to upload or verify: "
                            f"{detail or 'the manager gives no details'}")
        if state is OpState.RUNNING:
            percent = status.get("percent")
            return OpStatus(state, f"{word.lower()} {self.name}"
                            + (f" ({percent}%)" if percent is not None else ""))
        carried = str((await self.client.get("/upgrade/summary")).get("target_version", ""))
        if carried and nsx_version(carried) != nsx_version(self.target):
            return OpStatus(OpState.FAILED, f"the uploaded bundle {self.name} upgrades to "
                            f"{carried}, but the playbook's target is {self.target}")
        return OpStatus(OpState.DONE, f"bundle {self.name} uploaded and verified"
                        + (f" (id {bundle_id})" if bundle_id else ""))


def _kept(word: object) -> bool:
    """True when an upload the manager reports as ``word`` is not to be repeated: uploading,
    verifying or verified (a word the API does not define is uploaded again)."""
    return BUNDLE_UPLOAD.lists(word) and BUNDLE_UPLOAD.read(word) is not OpState.FAILED
