"""Adapters: how actions reach a simulated world or a real NSX-T Manager and vCenter."""
