"""Train / validation / test rows per human-labeled data set.

- goemotions: the published `train` / `dev` / `test` files as they are.
- kote: no train file in our copy. Train on `val.tsv` minus a held-out fifth, validate
  on that fifth, test on `test.tsv` (never trained on, never used to choose anything).
- nsmc: train on `ratings_train.tsv` minus a held-out tenth, validate on that tenth,
  test on `ratings_test.tsv`.
A row is held out when the sha256 of `"redheart-human-split:<data set>:<row id>"`, read
as a number in [0, 1), is below the fraction: the split depends on the row ids only, not
on the file order, the Python version or a random generator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.data.human.goemotions import load_goemotions
from training.data.human.kote import load_kote
from training.data.human.nsmc import load_nsmc
from training.data.human.rows import HumanRow

SPLIT_SALT = "redheart-human-split"
# Fraction of the training file held out as validation, where a data set has no validation file.
VALIDATION_FRACTION: dict[str, float] = {"kote": 0.2, "nsmc": 0.1}
DATASETS: tuple[str, ...] = ("goemotions", "kote", "nsmc")


@dataclass(frozen=True)
class Splits:
    dataset: str
    train: list[HumanRow]
    validation: list[HumanRow]
    test: list[HumanRow]
    provenance: str  # where each split's rows come from


def held_out(dataset: str, source_id: str, fraction: float) -> bool:
    digest = hashlib.sha256(f"{SPLIT_SALT}:{dataset}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _carve(dataset: str, rows: list[HumanRow], fraction: float) -> tuple[list[HumanRow], list[HumanRow]]:
    train: list[HumanRow] = []
    validation: list[HumanRow] = []
    for row in rows:
        (validation if held_out(dataset, row.source_id, fraction) else train).append(row)
    return train, validation


def _goemotions(data_dir: str | Path | None, verify: bool) -> Splits:
    return Splits("goemotions", load_goemotions(data_dir, "train", verify=verify),
                  load_goemotions(data_dir, "dev", verify=verify), load_goemotions(data_dir, "test", verify=verify),
                  "train: goemotions/train.tsv; validation: goemotions/dev.tsv; test: goemotions/test.tsv")


def _kote(data_dir: str | Path | None, verify: bool) -> Splits:
    fraction = VALIDATION_FRACTION["kote"]
    train, validation = _carve("kote", load_kote(data_dir, "val", verify=verify), fraction)
    return Splits("kote", train, validation, load_kote(data_dir, "test", verify=verify),
                  f"train: kote/val.tsv minus a held-out {fraction:.0%} (the published train.tsv is missing); "
                  f"validation: that {fraction:.0%} of kote/val.tsv; test: kote/test.tsv")


def _nsmc(data_dir: str | Path | None, verify: bool) -> Splits:
    fraction = VALIDATION_FRACTION["nsmc"]
    train, validation = _carve("nsmc", load_nsmc(data_dir, "train", verify=verify), fraction)
    return Splits("nsmc", train, validation, load_nsmc(data_dir, "test", verify=verify),
                  f"train: nsmc/ratings_train.tsv minus a held-out {fraction:.0%}; validation: that "
                  f"{fraction:.0%}; test: nsmc/ratings_test.tsv")


_BUILDERS: dict[str, Callable[[str | Path | None, bool], Splits]] = {
    "goemotions": _goemotions, "kote": _kote, "nsmc": _nsmc,
}


def splits(dataset: str, data_dir: str | Path | None = None, *, verify: bool = True) -> Splits:
    """Train / validation / test rows of one data set (`DATASETS`); `data_dir` defaults to
    `$REDHEART_DATA_DIR`. With `verify`, files listed in `SHA256SUMS` are checked first."""
    if dataset not in _BUILDERS:
        raise ValueError(f"unknown human-labeled data set {dataset!r}: one of {list(DATASETS)}")
    return _BUILDERS[dataset](data_dir, verify)
