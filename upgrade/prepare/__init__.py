"""Preparing a run: inputs read once, the compatibility gate, the plan and its estimate."""
