"""The authored set: synthetic situational sentences, EN + KO, written for this repository.

Written by language-model writing assistants working for the team, from one brief per emotion
and batch; each sentence is labeled with the emotion its writer meant it to express (not
annotated afterwards by independent raters).

Why it exists: GoEmotions and KOTE are online comments. Their emotions are mostly said
outright ("I love this", "so annoying"), their classes are far from balanced (GoEmotions
train maps to 281 fear and 480 disgust rows against 8,412 joy), and few of their rows
describe a situation without naming the feeling ("I heard footsteps behind me in the empty
garage"). A model trained on them alone gets such sentences wrong far more often than it
gets the comments wrong (docs/MODEL_CARD.md). These files teach that kind of sentence:
750 sentences per emotion and language (five batches of 150, each written after reading
the ones before, to cover what they do not), about half implicit (the situation only), in
many registers and everyday settings, each labeled with its one dominant emotion and the
writer's sentiment. Provenance and the rules the writers followed: docs/DATA.md.

They are never the hand-labeled evaluation set (`tests/data/emotion_eval.jsonl`): that set
was written separately, and `read_authored` refuses a sentence that equals one of its
sentences after normalization (case, spacing and punctuation folded), so none can train.

A sixth batch waits, untrained, in `training/data/authored_untrained/` as a held-out set of
the same kind (docs/DATA.md, "Batch 6").

Format: `training/data/authored/<lang>_<emotion>[_<batch>].jsonl`, one JSON object per line with
`text`, `lang` ("en" | "ko"), `emotion` (one of the seven) and `sentiment` (negative |
neutral | positive). A malformed line is a `HumanDataError` naming the file and line.
A fixed sixth of the rows (by the sha256 of the text) is held out for validation.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from schemas import labels as L
from training.data.corpora import SENTIMENT_CLASSES
from training.data.human.files import HumanDataError
from training.data.human.rows import HumanRow

AUTHORED_DIR = Path(__file__).resolve().parent / "authored"
DATASET = "authored"
LANGS = ("en", "ko")
VAL_SALT = "redheart-authored-val"
VAL_BUCKETS = 6  # one in six rows is a validation row
_FIELDS = ("text", "lang", "emotion", "sentiment")
_FOLD = re.compile(r"[\W_]+", re.UNICODE)


def normalized(text: str) -> str:
    """The text with case, spacing and punctuation folded: what "the same sentence" means here."""
    return _FOLD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def is_validation(text: str) -> bool:
    """Whether a row is held out: by its text's hash, so the split survives reordering files."""
    return hashlib.sha256(f"{VAL_SALT}:{text}".encode()).digest()[0] % VAL_BUCKETS == 0


def _row(path: Path, line_no: int, line: str, root: Path) -> HumanRow:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HumanDataError(path, f"not JSON: {exc.msg}", line_no) from None
    if not isinstance(obj, dict) or set(obj) != set(_FIELDS):
        raise HumanDataError(path, f"want an object with exactly the fields {', '.join(_FIELDS)}", line_no)
    text, lang, emotion, sentiment = (obj[k] for k in _FIELDS)
    if not isinstance(text, str) or not text.strip():
        raise HumanDataError(path, "`text` must be a non-empty string", line_no)
    if lang not in LANGS:
        raise HumanDataError(path, f"`lang` {lang!r} is not one of {', '.join(LANGS)}", line_no)
    if emotion not in L.EMOTIONS:
        raise HumanDataError(path, f"`emotion` {emotion!r} is not one of {', '.join(L.EMOTIONS)}", line_no)
    if sentiment not in SENTIMENT_CLASSES:
        raise HumanDataError(path, f"`sentiment` {sentiment!r} is not one of {', '.join(SENTIMENT_CLASSES)}",
                             line_no)
    one_hot = tuple(1.0 if e == emotion else 0.0 for e in L.EMOTIONS)
    rel = path.relative_to(root.parent) if path.is_relative_to(root.parent) else path
    return HumanRow(text=text.strip(), emotion=one_hot, sentiment=sentiment, source_labels=(emotion,),
                    dataset=DATASET, source_id=hashlib.sha256(text.strip().encode()).hexdigest()[:16], lang=lang,
                    origin=f"{rel}:{line_no}")


def read_authored(held_out_texts: Iterable[str] = (), root: Path = AUTHORED_DIR) -> list[HumanRow]:
    """Every authored row, files in name order. Refuses (HumanDataError) a malformed line,
    a text written twice, and a text that equals one of `held_out_texts` (the evaluation
    set) after `normalized`: such a row would let the model train on what scores it."""
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise HumanDataError(root, "no authored *.jsonl files")
    held_out = {normalized(t) for t in held_out_texts}
    rows: list[HumanRow] = []
    seen: dict[str, str] = {}
    for path in files:
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                row = _row(path, line_no, line, root)
                key = normalized(row.text)
                if key in held_out:
                    raise HumanDataError(path, "this sentence is in the hand-labeled evaluation set, which never "
                                               "trains", line_no)
                if key in seen:
                    raise HumanDataError(path, f"the same sentence as {seen[key]}", line_no)
                seen[key] = row.origin
                rows.append(row)
    return rows
