"""`StreamState`: one stream's temporal state, the value of the compacted `redheart.state`.

It carries the input offset it reflects so a restore can ignore changelog records
that ran ahead of the committed input offsets (docs/CONTRACT.md, "State changelog").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from schemas import labels as L
from schemas._base import Strict
from schemas.result import Dsp, Named, StreamSurd

MAX_WINDOW = 512


class StreamState(Strict):
    schema_version: Literal["1.0"] = L.SCHEMA_VERSION
    stream_id: str = Field(min_length=1, max_length=256)
    input_partition: int = Field(ge=0)
    input_offset: int = Field(ge=0, description="offset of the last input event applied")
    last_ts: datetime
    events_seen: int = Field(ge=1)
    mean: Named(L.STATE_VECTOR, -1.0, 1.0) = Field(description="Kalman filtered state")
    variance: Named(L.STATE_VECTOR, 0.0, 1e9) = Field(description="diagonal of the state covariance")
    window: list[Annotated[list[float], Field(min_length=len(L.STATE_VECTOR), max_length=len(L.STATE_VECTOR))]] = Field(
        default_factory=list,
        max_length=MAX_WINDOW,
        description=f"recent observations, oldest first; each row ordered as {list(L.STATE_VECTOR)}",
    )
    surd: StreamSurd | None = Field(default=None, description="latest stream SURD (carried between recomputations)")
    dsp: Dsp | None = Field(default=None, description="latest trajectory spectra (carried between recomputations)")
    typical_gap_s: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="geometric moving average of the gaps between events (forecast horizon unit)"
    )
