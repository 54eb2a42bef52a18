"""An NSX-T Manager 2.x upgrade-API emulator over the simulated world.

``nsxt-upgrade emulate nsxt`` serves the documented ``/api/v1/upgrade/...``
endpoints (DESIGN section 2) from a :class:`~upgrade.sim.world.World` kept in a
state directory, on a real clock with a speed factor.  Operators rehearse
against it; the ``nsxt`` adapter's tests use it.

* :mod:`upgrade.emulator.site` — the emulated manager's state: the world, the
  upgrade-unit groups, plan settings, bundles, EULA, history; the Upgrade
  Coordinator's plan scheduler; persistence after every change.
* :mod:`upgrade.emulator.views` — the JSON bodies the API returns.
* :mod:`upgrade.emulator.app` — the starlette application (routes, basic
  authentication, NSX error bodies, the 503 while the manager stops).
* :mod:`upgrade.emulator.server` — uvicorn behind a listener that really stops
  accepting connections while the manager's API is down, TLS, the tick loop.
"""
