"""The pure upgrade engine: events in, actions out; no I/O, no clock, no threads."""
