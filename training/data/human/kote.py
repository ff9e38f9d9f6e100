"""KOTE, Korean Online That-gul Emotions (Jeon, Lee & Kim, 2022): 44 labels, online comments.

Layout (docs/DATA.md): `kote/{val,test}.tsv` (UTF-8, LF, no header; comment ID, text,
comma-separated label ids 0-43), `kote/labels.txt` (label id = line - 1). The published
`train.tsv` (40,000 rows) is missing from our copy: `splits("kote")` trains on part of
`val.tsv`, validates on the rest, and tests on `test.tsv`.
"""

from __future__ import annotations

from pathlib import Path

from training.data.human.files import read_label_list, resolve_data_dir, verify_checksums
from training.data.human.mapping import KOTE
from training.data.human.multilabel import read_multilabel_tsv
from training.data.human.rows import HumanRow

DATASET = "kote"
SPLIT_FILES: dict[str, str] = {"val": "kote/val.tsv", "test": "kote/test.tsv"}
LABELS_FILE = "kote/labels.txt"
COLUMNS = ("id", "text", "labels")


def load_kote(data_dir: str | Path | None = None, split: str = "val", *, verify: bool = True) -> list[HumanRow]:
    """The rows of one published file (`val` 5,000, `test` 5,000 rows)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"KOTE split {split!r}: one of {sorted(SPLIT_FILES)} (train.tsv is not part of our copy)")
    root = resolve_data_dir(data_dir)
    if verify:
        verify_checksums(root, [LABELS_FILE, SPLIT_FILES[split]])
    labels = read_label_list(root / LABELS_FILE, tuple(KOTE), "KOTE label list")
    return read_multilabel_tsv(root, SPLIT_FILES[split], COLUMNS, labels, KOTE, DATASET, "ko", f"KOTE {split} file")
