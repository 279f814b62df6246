"""Governance rules, each in one place: voting.py decides outcomes; proposals.py
opens, votes on and closes proposals; settings.py defines the group settings."""
