"""GoEmotions (Demszky et al., ACL 2020): English Reddit comments, 27 emotions + neutral.

Layout (docs/DATA.md): `goemotions/{train,dev,test}.tsv` (UTF-8, LF, no header; text,
comma-separated label ids, Reddit comment id), `emotions.txt` (label id = line - 1),
`ekman_mapping.json` and `sentiment_dict.json` (the authors' groupings). The two JSON
files are checked against our mapping (`mapping.GOEMOTIONS`): it must follow the
authors' Ekman grouping except the documented `love`/`caring` -> love, and their
polarity exactly; a difference (another version of the data) is an error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.data.human.files import HumanDataError, read_label_list, require_file, resolve_data_dir, verify_checksums
from training.data.human.mapping import GOEMOTIONS
from training.data.human.multilabel import read_multilabel_tsv
from training.data.human.rows import HumanRow

DATASET = "goemotions"
SPLIT_FILES: dict[str, str] = {"train": "goemotions/train.tsv", "dev": "goemotions/dev.tsv", "test": "goemotions/test.tsv"}
LABELS_FILE = "goemotions/emotions.txt"
EKMAN_FILE = "goemotions/ekman_mapping.json"
SENTIMENT_FILE = "goemotions/sentiment_dict.json"
COLUMNS = ("text", "labels", "id")
# Where our mapping leaves the authors' Ekman grouping on purpose (docs/DATA.md).
EKMAN_EXCEPTIONS: dict[str, str] = {"love": "love", "caring": "love"}


def _read_json(path: Path, what: str) -> Any:
    raw = require_file(path, what).read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HumanDataError(path, f"not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise HumanDataError(path, f"not JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None


def _groups(path: Path, what: str, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """label -> group of a JSON object {group: [label, ...]}; each label at most once."""
    data = _read_json(path, what)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise HumanDataError(path, "expected a JSON object of label lists")
    out: dict[str, str] = {}
    for group, labels in data.items():
        if names is not None and group not in names:
            raise HumanDataError(path, f"unexpected group {group!r} (expected {list(names)})")
        for label in labels:
            if label not in GOEMOTIONS:
                raise HumanDataError(path, f"unknown GoEmotions label {label!r} in group {group!r}")
            if label in out:
                raise HumanDataError(path, f"label {label!r} in both {out[label]!r} and {group!r}")
            out[label] = group
    return out


def check_reference(root: Path) -> None:
    """Our GoEmotions mapping against the authors' `ekman_mapping.json` and `sentiment_dict.json`."""
    ekman = _groups(root / EKMAN_FILE, "GoEmotions Ekman grouping")
    for label, group in ekman.items():
        want = EKMAN_EXCEPTIONS.get(label, group)
        emotion = GOEMOTIONS[label].emotion
        if emotion is None or dict(emotion) != {want: 1.0}:
            raise HumanDataError(root / EKMAN_FILE, f"{label!r} -> {group!r} here, but training/data/human/mapping.py "
                                 f"maps it to {None if emotion is None else dict(emotion)} (expected {want!r})")
    missing = [n for n in GOEMOTIONS if n != "neutral" and n not in ekman]
    if missing:
        raise HumanDataError(root / EKMAN_FILE, f"no Ekman group for {missing}")
    polarity = _groups(root / SENTIMENT_FILE, "GoEmotions sentiment grouping", ("positive", "negative", "ambiguous"))
    for label, mapping in GOEMOTIONS.items():
        want = polarity.get(label, "neutral")
        if mapping.polarity != want:
            raise HumanDataError(root / SENTIMENT_FILE, f"{label!r} is {want!r} here, but training/data/human/mapping.py "
                                 f"says {mapping.polarity!r}")


def load_goemotions(data_dir: str | Path | None = None, split: str = "train", *, verify: bool = True) -> list[HumanRow]:
    """The rows of one published split (`train` 43,410, `dev` 5,426, `test` 5,427 rows)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"GoEmotions split {split!r}: one of {sorted(SPLIT_FILES)}")
    root = resolve_data_dir(data_dir)
    if verify:
        verify_checksums(root, [LABELS_FILE, EKMAN_FILE, SENTIMENT_FILE, SPLIT_FILES[split]])
    labels = read_label_list(root / LABELS_FILE, tuple(GOEMOTIONS), "GoEmotions label list")
    check_reference(root)
    return read_multilabel_tsv(root, SPLIT_FILES[split], COLUMNS, labels, GOEMOTIONS, DATASET, "en",
                               f"GoEmotions {split} split")
