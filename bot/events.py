"""Inbound events: what adapters hand to the core.

Small frozen models, keyed by `(platform, native id)`; display names are
labels, never identity. Adapters build these and nothing else crosses in.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class UserRef(_Frozen):
    platform: str
    user_id: str


def platform_kind(platform: str) -> str:
    """The chat platform behind a platform name: "telegram" for "telegram" and for a second bot
    account's "telegram.<account>"."""
    return platform.split(".", 1)[0]


class ChatRef(_Frozen):
    platform: str
    chat_id: str


class CommandMessage(_Frozen):
    """A text message addressed to the bot (prefix already recognised or not: the core checks)."""

    kind: Literal["command"] = "command"
    chat: ChatRef
    sender: UserRef
    sender_name: str
    text: str
    event_id: str
    reply_to: str | None = None
    is_private: bool = False
    chat_title: str | None = None
    # The bot's own username where commands can be addressed (`/vote@CommonsBot`).
    bot_username: str | None = None
    # Carried by a link (a Telegram deep link) that anyone could have crafted: only commands
    # that change nothing by themselves run this way (the core checks).
    via_link: bool = False


class ChoiceMade(_Frozen):
    """A one-tap answer: an inline button, a poll response or a reaction.

    `payload` is the opaque string the core put on the choice it offered.
    `retracted` is set when the member takes the answer back (a redacted reaction).
    """

    kind: Literal["choice"] = "choice"
    chat: ChatRef
    sender: UserRef
    sender_name: str
    payload: str
    event_id: str
    message_id: str | None = None
    retracted: bool = False
    is_private: bool = False  # tapped in the member's private chat with the bot


class MemberJoined(_Frozen):
    kind: Literal["joined"] = "joined"
    chat: ChatRef
    user: UserRef
    display_name: str
    event_id: str


class MemberLeft(_Frozen):
    kind: Literal["left"] = "left"
    chat: ChatRef
    user: UserRef
    event_id: str


class MemberCount(_Frozen):
    """The platform's own head count (Telegram reports a count, not a list)."""

    kind: Literal["member_count"] = "member_count"
    chat: ChatRef
    count: int = Field(ge=0)


Inbound = Annotated[
    Union[CommandMessage, ChoiceMade, MemberJoined, MemberLeft, MemberCount],
    Field(discriminator="kind"),
]


__all__ = [
    "UserRef",
    "ChatRef",
    "CommandMessage",
    "ChoiceMade",
    "MemberJoined",
    "MemberLeft",
    "MemberCount",
    "Inbound",
]
