"""The NSX-T Manager's status enums (the upgrade API of the 2.3 and 2.5.1 SDKs, kept in
``contracts/nsxt/``) as :class:`~upgrade.adapters.status_words.StatusWords` tables: the
one place the adapter turns the manager's words into :class:`OpState` members."""

from __future__ import annotations

from upgrade.adapters.status_words import StatusWords
from upgrade.core.engine.messages import OpState

__all__ = ["BUNDLE_UPLOAD", "CHECKS_EXECUTION", "UC_UPGRADE", "UNIT_UPGRADE"]

#: one upgrade unit's upgrade (``GET /upgrade/upgrade-unit-groups/{id}/status``).  A paused
#: unit is not upgrading: like one not started, the unit's version then says whether it is
#: done.  Unlisted: the same (the version decides).
UNIT_UPGRADE = StatusWords("UpgradeUnitStatus.status", {
    "SUCCESS": OpState.DONE,
    "FAILED": OpState.FAILED,
    "IN_PROGRESS": OpState.RUNNING,
    "PAUSING": OpState.RUNNING,  # 2.5.1: a pause lets the units under way finish
    "PAUSED": OpState.NOT_STARTED,
    "NOT_STARTED": OpState.NOT_STARTED,
}, unlisted=OpState.NOT_STARTED)

#: the Upgrade Coordinator's own upgrade (2.5.1+, ``GET /upgrade/uc-upgrade-status``).
#: Unlisted: not started (asked again: the manager leaves one in progress alone).
UC_UPGRADE = StatusWords("UcUpgradeStatus.state", {
    "NOT_STARTED": OpState.NOT_STARTED,
    "IN_PROGRESS": OpState.RUNNING,
    "SUCCESS": OpState.DONE,
    "FAILED": OpState.FAILED,
}, unlisted=OpState.NOT_STARTED)

#: an upgrade bundle's upload and verification (``GET /upgrade/bundles/{id}/upload-status``).
#: Unlisted: still running (the poll waits; the operation's timeout ends the wait), though a
#: start uploads again (:meth:`StatusWords.lists`).
BUNDLE_UPLOAD = StatusWords("UpgradeBundleUploadStatus.status", {
    "UPLOADING": OpState.RUNNING,
    "VERIFYING": OpState.RUNNING,
    "SUCCESS": OpState.DONE,
    "FAILED": OpState.FAILED,
}, unlisted=OpState.RUNNING)

#: one component's pre- or post-upgrade checks (2.5.1, ``GET /upgrade/status-summary``,
#: ``GET /upgrade/upgrade-unit-groups/aggregate-info``).  Completed checks are done
#: running: their findings decide the operation.  Unlisted: the same.
CHECKS_EXECUTION = StatusWords("UpgradeChecksExecutionStatus.status", {
    "NOT_STARTED": OpState.NOT_STARTED,
    "IN_PROGRESS": OpState.RUNNING,
    "COMPLETED": OpState.DONE,
}, unlisted=OpState.DONE)
