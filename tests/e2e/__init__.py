"""Tests of end-to-end rehearsals against the emulator and vcsim."""
