"""Tests of the shell: journal, replay, runner, state dir."""
