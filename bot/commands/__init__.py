"""Commands: declared once (registry.py), used by every platform and by `help`."""
