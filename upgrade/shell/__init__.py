"""The imperative shell: state dir, journal, replay, the runner and the sessions that drive
the pure engine against an adapter, and what reads their records back (status, history)."""
