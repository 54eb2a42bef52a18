"""The simulated NSX-T site: a pure world model and its durable store."""
