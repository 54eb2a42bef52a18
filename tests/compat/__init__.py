"""Tests of the compatibility matrix."""
