"""Outbound actions: what the core asks adapters to do.

An adapter declares which kinds it can perform (`Adapter.can`); the
delivery layer falls back where it cannot (a direct message becomes a
mention in the group, an acknowledgement becomes a reply).
"""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from bot import i18n
from bot.events import ChatRef, UserRef
from bot.i18n import N_
from bot.render.text import RichText


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


class Choice(_Frozen):
    """One tap-able answer. `payload` comes back in `ChoiceMade.payload` (≤ 64 bytes: Telegram's limit)."""

    label: str
    payload: str = Field(max_length=64)
    # An emoji for platforms where one taps a reaction rather than a button (Matrix).
    symbol: str | None = None
    # The answer happens in the member's private chat with the bot (a secret ballot): where a
    # button can open that chat, it does (Telegram: a t.me deep link carrying the payload);
    # elsewhere the tap comes back from the group, and the core answers privately.
    private: bool = False


class SendMessage(_Frozen):
    kind: Literal["send"] = "send"
    chat: ChatRef
    text: RichText
    reply_to: str | None = None
    choices: tuple[Choice, ...] = ()
    # What tapping a choice does, for platforms that list the choices in words (Matrix: "React to vote: …");
    # English, translated by the adapter into `language`.
    choices_do: str = N_("vote")
    language: str = Field(default_factory=i18n.current)  # what the text is written in
    # When set, the delivery layer reports the platform message id back to the
    # core under this key, so the message can be edited later (a live tally).
    track: str | None = None


class EditMessage(_Frozen):
    """Replace the text of a message the bot sent: by its platform id, or by the
    `track` key of a SendMessage (resolved when the edit is delivered, so an
    edit may be queued before the message it changes has gone out)."""

    kind: Literal["edit"] = "edit"
    chat: ChatRef
    text: RichText
    message_id: str | None = None
    track: str | None = None
    choices: tuple[Choice, ...] = ()
    language: str = Field(default_factory=i18n.current)


class Acknowledge(_Frozen):
    """A quiet confirmation of a command (a reaction where possible, else a short reply).

    `problem` marks a refused tap: the member believes they voted, so a platform
    without private toasts must tell them in the open."""

    kind: Literal["ack"] = "ack"
    chat: ChatRef
    event_id: str
    text: RichText
    problem: bool = False


class Chart(_Frozen):
    """A picture described by its figures (`bot.charts.describe`), drawn when it is delivered, in a
    process of its own: drawing takes a few hundred milliseconds, and no member's command should
    wait behind it on the core's worker."""

    name: Literal["audit", "rounds", "ledger"]
    figures: str  # JSON: the chart function's keyword arguments


class SendImage(_Frozen):
    kind: Literal["image"] = "image"
    chat: ChatRef
    filename: str
    data: bytes = b""  # empty while `chart` is still to be drawn
    caption: RichText | None = None
    chart: Chart | None = None


class SendFile(_Frozen):
    kind: Literal["file"] = "file"
    chat: ChatRef
    filename: str
    data: bytes
    mime_type: str = "application/octet-stream"
    caption: RichText | None = None


class DirectMessage(_Frozen):
    """A private message to one member; `fallback_chat` gets a mention if the platform cannot DM them."""

    kind: Literal["dm"] = "dm"
    user: UserRef
    text: RichText
    fallback_chat: ChatRef | None = None
    choices: tuple[Choice, ...] = ()
    # What the group is told instead, when it must not see the private text itself.
    fallback_text: RichText | None = None
    language: str = Field(default_factory=i18n.current)


Action = Annotated[
    Union[SendMessage, EditMessage, Acknowledge, SendImage, SendFile, DirectMessage],
    Field(discriminator="kind"),
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def dump_action(action: Action) -> str:
    return ACTION_ADAPTER.dump_json(action).decode()


def load_action(data: str) -> Action:
    return ACTION_ADAPTER.validate_json(data)


def platform_of(action: Action) -> str:
    return action.user.platform if isinstance(action, DirectMessage) else action.chat.platform


def lane_of(action: Action) -> tuple[str, str]:
    """Where an action goes, for keeping order: a chat, or a member's private chat."""
    if isinstance(action, DirectMessage):
        return action.user.platform, f"user:{action.user.user_id}"
    return action.chat.platform, action.chat.chat_id


def target_of(action: Action) -> str | None:
    """The message an edit changes, or the tracked message a send will be: edits of
    one target supersede each other, and wait for its send."""
    if isinstance(action, EditMessage):
        message = action.track or action.message_id
    elif isinstance(action, SendMessage) and action.track:
        message = action.track
    else:
        return None
    return f"{action.chat.platform}:{action.chat.chat_id}:{message}"


class Outgoing(NamedTuple):
    """An action as recorded in the outbox: its row id, the action, and a key that stays the
    same across retries and restarts but is never shared by two rows, even of two databases
    (a platform's transaction id is made from it, see `Adapter.perform`)."""

    id: int
    action: Action
    key: str
