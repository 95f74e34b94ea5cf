"""Events in the formats teams already send: Segment Spec `track`, `identify` and `batch`.

Segment, RudderStack and Jitsu deliver these as webhooks. Each payload is validated
with pydantic, then turned into Coltiva's own event JSON (docs/events.md) and
handed to the same runner as any line, so the engine's rules (`parse_event`,
quarantine, duplicates by id) apply unchanged:

    messageId            -> id (retries of the same message are duplicates)
    userId / anonymousId -> lead (userId wins)
    track.event          -> type, through the configured mapping (segment.types)
    track.properties     -> data
    identify.traits      -> attributes of a `lead.updated` event
    timestamp            -> time
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (AwareDatetime, BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError,
                      model_validator)

from .events import EVENT_ADAPTER, EventId

__all__ = ["Track", "Identify", "Batch", "SegmentPayload", "parse_segment", "to_lines",
           "event_schemas", "ValidationError"]


def _someone_schema(schema: dict) -> None:
    """The JSON Schema says what the validator checks: a userId or an anonymousId, not null."""
    schema["anyOf"] = [{"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                       for name in ("userId", "anonymousId")]


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_someone_schema)

    messageId: EventId
    userId: EventId | None = None
    anonymousId: EventId | None = None
    timestamp: AwareDatetime

    @model_validator(mode="after")
    def _someone(self):
        if self.userId is None and self.anonymousId is None:
            raise ValueError("a message needs a userId or an anonymousId (the lead)")
        return self

    @property
    def lead(self) -> str:
        return str(self.userId if self.userId is not None else self.anonymousId)


class Track(_Message):
    """Something a lead did: `event` names it, `properties` describe it."""

    type: Literal["track"]
    event: Annotated[str, Field(min_length=1, max_length=200)]
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    """Who a lead is: `traits` become the lead's attributes."""

    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("type", "batch" if "batch" in value else None)
    return getattr(value, "type", None)


_Single = Annotated[Union[Annotated[Track, Tag("track")], Annotated[Identify, Tag("identify")]], Discriminator(_kind)]


class Batch(BaseModel):
    """Several track/identify messages in one request (Segment's /v1/batch)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["batch"] = "batch"
    batch: Annotated[list[_Single], Field(max_length=100_000)]


SegmentPayload = Annotated[
    Union[Annotated[Track, Tag("track")], Annotated[Identify, Tag("identify")], Annotated[Batch, Tag("batch")]],
    Discriminator(_kind),
]
_ADAPTER = TypeAdapter(SegmentPayload)


def parse_segment(body: bytes) -> Track | Identify | Batch:
    """Validate a Segment payload; raises pydantic's ValidationError with every problem's location."""
    return _ADAPTER.validate_json(body)


def _line(message: Track | Identify, types: Mapping[str, str]) -> str:
    event: dict[str, Any] = {"id": str(message.messageId), "lead": message.lead,
                             "time": message.timestamp.isoformat()}
    if isinstance(message, Track):
        event["type"] = types.get(message.event, message.event)
        if message.properties:
            event["data"] = message.properties
    else:
        event["type"] = "lead.updated"
        if message.traits:
            event["attributes"] = message.traits
    return json.dumps(event, ensure_ascii=False)


def to_lines(payload: Track | Identify | Batch, types: Mapping[str, str]) -> list[bytes]:
    """Coltiva event lines, one per message, in the payload's order."""
    messages = payload.batch if isinstance(payload, Batch) else [payload]
    return [_line(m, types).encode("utf-8") for m in messages]


def event_schemas() -> dict:
    """The published JSON Schemas: Coltiva's event line and the Segment payloads accepted."""
    return {
        "$comment": "Coltiva event line (POST /events, one per line) and Segment payloads (POST /segment)",
        "coltiva_event": EVENT_ADAPTER.json_schema(),
        "segment_payload": _ADAPTER.json_schema(),
    }
