"""An Ops Manager API emulator: the UAA token endpoint, ``/api/v0/info`` and
``/api/v0/deployed/products``, over a state file an operator's tile upgrade moves."""
