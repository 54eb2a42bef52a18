"""`python -m upgrade` is the same as the `nsxt-upgrade` command."""

from upgrade.cli.main import main

main()
