"""nsxt-upgrade: plan, run, pause and resume NSX-T upgrades under VMware PKS."""

__version__ = "0.1.0"
