"""Which events form a micro-batch: by count, by tokens and by wait time.

The batcher knows nothing of the model (TEI's router/backend split): it is given a
token count per event and hands back ready batches in arrival order. Arrival order is
kept so events of one stream are applied in offset order.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Pending(Generic[T]):
    item: T
    tokens: int
    arrived: float  # monotonic seconds


@dataclass
class MicroBatcher(Generic[T]):
    max_events: int
    max_tokens: int
    max_wait_s: float
    _queue: deque[Pending[T]] = field(default_factory=deque)
    _tokens: int = 0

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_tokens < 1 or self.max_wait_s < 0:
            raise ValueError("max_events and max_tokens must be >= 1 and max_wait_s >= 0")

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def tokens(self) -> int:
        return self._tokens

    def add(self, item: T, tokens: int, now: float) -> None:
        self._queue.append(Pending(item, max(1, tokens), now))
        self._tokens += max(1, tokens)

    def ready(self, now: float) -> bool:
        """A batch is due when it is full by count or tokens, or its oldest event waited enough."""
        if not self._queue:
            return False
        return (
            len(self._queue) >= self.max_events
            or self._tokens >= self.max_tokens
            or now - self._queue[0].arrived >= self.max_wait_s
        )

    def time_to_ready(self, now: float) -> float | None:
        """Seconds until the oldest event's wait expires (None when empty)."""
        if not self._queue:
            return None
        return max(0.0, self._queue[0].arrived + self.max_wait_s - now)

    def take(self) -> list[Pending[T]]:
        """The next batch in arrival order: at most max_events, and at most max_tokens
        unless a single event alone is larger (it then goes alone rather than never)."""
        batch: list[Pending[T]] = []
        tokens = 0
        while self._queue and len(batch) < self.max_events:
            nxt = self._queue[0]
            if batch and tokens + nxt.tokens > self.max_tokens:
                break
            batch.append(self._queue.popleft())
            tokens += nxt.tokens
        self._tokens -= tokens
        return batch

    def drain(self) -> list[list[Pending[T]]]:
        out = []
        while self._queue:
            out.append(self.take())
        return out
