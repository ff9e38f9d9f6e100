"""The shared reader of GoEmotions and KOTE: a TSV of (text, comma-separated label ids, id)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from training.data.human.files import parse_label_ids, read_tsv, text_field, unique_id
from training.data.human.mapping import LabelMapping, row_targets
from training.data.human.rows import HumanRow


def read_multilabel_tsv(root: Path, rel: str, columns: tuple[str, ...], labels: tuple[str, ...],
                        table: Mapping[str, LabelMapping], dataset: str, lang: str, what: str) -> list[HumanRow]:
    """Rows of `root/rel`, whose columns are named `columns` and include "text", "labels"
    and "id"; every row's targets come from `table` (see `mapping.row_targets`)."""
    path = root / rel
    t, y, i = columns.index("text"), columns.index("labels"), columns.index("id")
    rows: list[HumanRow] = []
    seen: dict[str, int] = {}
    for number, fields in read_tsv(path, columns, what):
        names = parse_label_ids(path, number, fields[y], labels)
        emotion, sentiment = row_targets(names, table)
        rows.append(HumanRow(text_field(path, number, fields[t]), emotion, sentiment, names, dataset,
                             unique_id(path, number, fields[i], seen), lang, f"{rel}:{number}"))
    return rows
