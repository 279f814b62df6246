"""The refusal every governance rule raises."""


class RuleViolation(Exception):
    """The action breaks a governance rule; the message says which, and nothing changes."""
