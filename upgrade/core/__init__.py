"""The pure core: the domain model, the plan, the engine and its state machines.

Nothing here does I/O, reads a clock or starts a thread (an import-linter contract in
``pyproject.toml`` forbids it); the same inputs give the same decisions, event for event.
"""
