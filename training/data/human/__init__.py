"""Human-labeled emotion and sentiment data sets: GoEmotions (English, 27 emotions +
neutral), KOTE (Korean, 44 labels), NSMC-style (Korean, binary sentiment).

Each loader reads the data directory (`--data-dir`, else `$REDHEART_DATA_DIR`; layout,
provenance, licenses and the label mapping in docs/DATA.md) and returns `HumanRow`s:
text, our seven-emotion target distribution or None, sentiment class or None, and the
source labels. A missing or malformed file raises `HumanDataError` naming the file and
line; files listed in the directory's `SHA256SUMS` are verified. `splits(name)` gives
train / validation / test rows per data set. Training reads them through
`training.data.dataset` (presets with `human_sets`: demo-human, full, tiny-human).
"""

from training.data.human.files import DATA_DIR_ENV, HumanDataError, MissingDataFile, resolve_data_dir
from training.data.human.goemotions import load_goemotions
from training.data.human.kote import load_kote
from training.data.human.mapping import GOEMOTIONS, KOTE, LabelMapping, row_targets
from training.data.human.nsmc import load_nsmc
from training.data.human.rows import HumanRow
from training.data.human.splits import DATASETS, Splits, splits

__all__ = [
    "DATASETS", "DATA_DIR_ENV", "GOEMOTIONS", "KOTE", "HumanDataError", "HumanRow", "LabelMapping", "MissingDataFile",
    "Splits", "load_goemotions", "load_kote", "load_nsmc", "resolve_data_dir", "row_targets", "splits",
]
