"""Reading the operator's files: the safe YAML reader, playbooks, inventories, windows.

Every error names the file, line and column; values come out as :mod:`upgrade.core` types.
"""
