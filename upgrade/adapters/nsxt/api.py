"""Which NSX-T upgrade API the manager offers: learnt by asking, never assumed.

NSX-T 2.1-2.4 managers have the 2.x upgrade API that VMware's 2.3 SDK defines;
2.5.1 added ``GET /upgrade/uc-upgrade-status``, the pre/post-check actions
(``execute_pre_upgrade_checks``, ``execute_post_upgrade_checks``) and their
``pre_upgrade_status``/``post_upgrade_status``.  :class:`ManagerApi` probes the
first of those once: 200 means the manager has the 2.5.1 additions, 404 that it
has not (the adapter then uses the 2.3 way: ``/upgrade/summary``, unit
``warnings``, ``aggregate-info`` errors, ``/cluster/status``).  A "no" is asked
again after the Upgrade Coordinator was upgraded, since the coordinator's API is
then the new version's.
"""

from __future__ import annotations

import structlog

from upgrade.adapters.nsxt.http import NsxtClient, NsxtHttpError

__all__ = ["UC_STATUS", "ManagerApi"]

log = structlog.get_logger(__name__)

#: the 2.5.1 endpoint whose presence stands for all of 2.5.1's additions
UC_STATUS = "/upgrade/uc-upgrade-status"


class ManagerApi:
    """What the manager behind ``client`` offers."""

    def __init__(self, client: NsxtClient) -> None:
        self.client = client
        self._v25: bool | None = None

    async def has_v25(self) -> bool:
        """True when the manager has 2.5.1's upgrade-API additions (probed once)."""
        if self._v25 is None:
            try:
                await self.client.get(UC_STATUS)
                self._v25 = True
            except NsxtHttpError as exc:
                if exc.status != 404:
                    raise
                self._v25 = False
            log.info("nsxt.api_probed", manager=self.client.where,
                     api="2.5.1+" if self._v25 else "2.x (2.3 way)")
        return self._v25

    def coordinator_upgraded(self) -> None:
        """The coordinator now runs the new version: ask again what it offers."""
        if self._v25 is False:
            self._v25 = None
