"""Tests of the NSX-T Manager emulator."""
