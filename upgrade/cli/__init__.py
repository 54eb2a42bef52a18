"""The `nsxt-upgrade` command line: one module per command, loaded on demand."""
