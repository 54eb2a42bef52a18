"""An NSX-T Manager 2.x upgrade-API emulator over the simulated world.

``nsxt-upgrade emulate nsxt`` serves VMware's ``/api/v1/upgrade/...`` endpoints of
one NSX-T version (``--api-version 2.3``, exactly; ``2.5``: with 2.5.1's
additions), as VMware's SDK defines them (the contract in contracts/nsxt/), from
a :class:`~upgrade.sim.world.World` kept in a state directory, on a real clock
with a speed factor.  Operators rehearse against it; the ``nsxt`` adapter's
tests check every exchange against the contract (``--record``).

* :mod:`upgrade.emulator.site` — the emulated manager's state: the world plus
  what the coordinator keeps; persistence after every change.
* :mod:`upgrade.emulator.layout` — components, groups, settings, bundles, plan.
* :mod:`upgrade.emulator.coordinator` — the plan (start, pause, continue, reset)
  and its scheduler, which pauses at component boundaries; bringing the site to now.
* :mod:`upgrade.emulator.groups` — group and settings changes.
* :mod:`upgrade.emulator.views` — the JSON bodies the API returns.
* :mod:`upgrade.emulator.handlers` and :mod:`upgrade.emulator.app` — the starlette
  application: routes, basic authentication, NSX error bodies, the 503 while the
  manager stops.
* :mod:`upgrade.emulator.limits` — request bodies: the size limit (413), safe JSON (400).
* :mod:`upgrade.emulator.server` — uvicorn behind a listener that really stops
  accepting connections while the manager's API is down; the tick loop.
* :mod:`upgrade.emulator.tls` — the self-signed certificate of ``--tls``.
"""
