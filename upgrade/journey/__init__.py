"""A journey: a whole upgrade path (``compat path``'s steps) carried out, NSX-T hops as runs
of this engine and PKS / Ops Manager steps as gates the operator passes (DESIGN section 9)."""
