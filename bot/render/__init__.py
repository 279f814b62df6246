"""The text layer: how everything the bot says reads in a chat.

`text` is the rich-text API (the HTML subset, mentions, escaping); the other
modules render one area each (proposals, roles, needs, audits).
"""
