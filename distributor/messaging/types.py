"""Message types: what a message announces, shown in the pane as ``[TYPE]``, and the spellings
accepted for them (the predecessor's ``REVIEW-REQUEST`` among them)."""

from __future__ import annotations

import re
from enum import Enum, StrEnum

from distributor.errors import ValidationError
from distributor.messaging.sanitize import strip_controls


class MessageType(StrEnum):
    """What a message announces; shown in the pane as ``[TYPE]``.

    :func:`parse_message_type` also accepts the predecessor's spellings (claude-swarm's
    ``REVIEW-REQUEST``), any case, ``-`` or space for ``_``, and other enums by their value.
    """

    INFO = "INFO"
    QUESTION = "QUESTION"
    ANSWER = "ANSWER"
    ALERT = "ALERT"
    TASK_AVAILABLE = "TASK_AVAILABLE"
    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    BLOCKED = "BLOCKED"
    REVIEW_REQUEST = "REVIEW_REQUEST"
    ACK = "ACK"
    CHALLENGE = "CHALLENGE"


# Other names of a type (after upper-casing and '-'/' ' -> '_').
MESSAGE_TYPE_ALIASES = {
    "REVIEWREQUEST": MessageType.REVIEW_REQUEST,
    "REVIEW": MessageType.REVIEW_REQUEST,
    "ACKNOWLEDGE": MessageType.ACK,
    "ACKNOWLEDGEMENT": MessageType.ACK,
}


MessageTypeLike = MessageType | str | Enum


def parse_message_type(value: object) -> MessageType:
    """``value`` as a :class:`MessageType`: a member, its value or name in any case, with ``-``
    or a space for ``_`` (``REVIEW-REQUEST``, ``review_request``), an alias, or another enum
    (the predecessor's ``MessageType.REVIEW_REQUEST``) by its value; ``ValidationError`` else."""
    if isinstance(value, MessageType):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str) and len(value) <= 64:
        key = re.sub(r"[\s-]+", "_", value.strip()).upper()
        if key in MessageType.__members__:
            return MessageType[key]
        if key in MESSAGE_TYPE_ALIASES:
            return MESSAGE_TYPE_ALIASES[key]
    choices = ", ".join(t.value for t in MessageType)
    shown = strip_controls(str(value))[:40]
    raise ValidationError(f"unknown message type {shown!r}: one of {choices}")
