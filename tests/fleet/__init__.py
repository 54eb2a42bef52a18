"""Tests of many sites on Temporal."""
