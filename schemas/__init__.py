"""Wire messages of Red Heart: pydantic v2 models, the single source of the JSON Schemas."""

from schemas.dead_letter import DeadLetter
from schemas.input import InputEvent
from schemas.result import EventAnalysis, ResultEvent
from schemas.state import StreamState

__all__ = ["DeadLetter", "EventAnalysis", "InputEvent", "ResultEvent", "StreamState"]
