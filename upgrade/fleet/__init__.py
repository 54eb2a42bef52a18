"""Fleet: many NSX-T sites at once on Temporal (DESIGN section 8).

* :mod:`.fleetfile` reads ``FLEET.yaml``;
* :mod:`.shared` holds the plain data that crosses Temporal (workflow input, activity
  arguments) and the pure status document of a site;
* :mod:`.workflow` is the site workflow: the pure engine, driven by Temporal (no side
  effects at import: the SDK's sandbox re-imports it);
* :mod:`.activities` runs one adapter start or poll;
* :mod:`.worker` and :mod:`.client` are the two ends the CLI (``fleet worker``,
  ``fleet run|status|pause|resume``) calls.

Everything here needs the optional ``temporalio`` package (``pip install
nsxt-upgrade[fleet]``) except :mod:`.fleetfile`.
"""
