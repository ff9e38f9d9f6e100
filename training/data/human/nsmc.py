"""NSMC-style Korean movie reviews, rebuilt from the Naver Sentiment Movie Corpus crawl.

Layout (docs/DATA.md): `nsmc/ratings_{train,test}.tsv`, UTF-8, LF, header
`id<TAB>document<TAB>label`, label 0 = negative (1-4 stars), 1 = positive (9-10 stars).
Binary sentiment only: rows teach no emotion.
"""

from __future__ import annotations

from pathlib import Path

from training.data.human.files import HumanDataError, read_tsv, resolve_data_dir, text_field, unique_id, verify_checksums
from training.data.human.rows import HumanRow

DATASET = "nsmc"
SPLIT_FILES: dict[str, str] = {"train": "nsmc/ratings_train.tsv", "test": "nsmc/ratings_test.tsv"}
COLUMNS = ("id", "document", "label")
LABELS: dict[str, str] = {"0": "negative", "1": "positive"}


def load_nsmc(data_dir: str | Path | None = None, split: str = "train", *, verify: bool = True) -> list[HumanRow]:
    """The rows of one file (`train` 150,000, `test` 50,000 rows; the header is not a row)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"NSMC split {split!r}: one of {sorted(SPLIT_FILES)}")
    root = resolve_data_dir(data_dir)
    rel = SPLIT_FILES[split]
    if verify:
        verify_checksums(root, [rel])
    path = root / rel
    rows: list[HumanRow] = []
    seen: dict[str, int] = {}
    for number, (rid, document, label) in read_tsv(path, COLUMNS, f"NSMC {split} file", header=True):
        if label not in LABELS:
            raise HumanDataError(path, f"label {label!r}; expected 0 (negative) or 1 (positive)", number)
        sentiment = LABELS[label]
        rows.append(HumanRow(text_field(path, number, document), None, sentiment, (sentiment,), DATASET,
                             unique_id(path, number, rid, seen), "ko", f"{rel}:{number}"))
    return rows
