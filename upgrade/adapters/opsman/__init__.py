"""Ops Manager as a source of versions: its own (``GET /api/v0/info``) and the PKS tile's
(``GET /api/v0/deployed/products``), read with a UAA token."""
