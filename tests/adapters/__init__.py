"""Tests of the NSX-T and vSphere adapters."""
