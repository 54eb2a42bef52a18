"""The NSX-T Manager adapter: the Upgrade Coordinator REST API over httpx."""
