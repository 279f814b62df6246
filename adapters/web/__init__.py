"""The members' pages and calendar feeds over HTTP (see server.py)."""
