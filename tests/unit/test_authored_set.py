"""The authored situational set (`training.data.authored_set`): the shipped files load, every
emotion and language is there, nothing of the hand-labeled evaluation set can train, and a
malformed line is an error naming its file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import labels as L
from training.data.authored_set import AUTHORED_DIR, is_validation, normalized, read_authored
from training.data.dataset import read_eval_set
from training.data.human.files import HumanDataError


def _write(root: Path, name: str, rows: list[object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def _ok(text: str, lang: str = "en", emotion: str = "fear", sentiment: str = "negative") -> dict[str, str]:
    return {"text": text, "lang": lang, "emotion": emotion, "sentiment": sentiment}


def test_the_shipped_files_cover_every_emotion_and_language_and_never_the_eval_set() -> None:
    eval_texts = [r["text"] for r in read_eval_set()]
    rows = read_authored(eval_texts)  # raises if any authored sentence is an evaluation sentence
    for lang in ("en", "ko"):
        for emotion in L.EMOTIONS:
            n = sum(r.lang == lang and r.source_labels == (emotion,) for r in rows)
            assert n >= 100, (lang, emotion, n)
    held = {normalized(t) for t in eval_texts}
    assert not held & {normalized(r.text) for r in rows}
    for r in rows:
        assert r.emotion is not None and r.emotion[L.EMOTIONS.index(r.source_labels[0])] == 1.0
        assert r.origin.startswith("authored/") and r.origin.rsplit(":", 1)[1].isdigit()
    # about a sixth held out, by text, so the split does not depend on file order
    share = sum(is_validation(r.text) for r in rows) / len(rows)
    assert 0.12 < share < 0.22
    assert AUTHORED_DIR.is_dir()


def test_an_eval_sentence_is_refused_even_with_other_case_and_punctuation(tmp_path: Path) -> None:
    path = _write(tmp_path / "authored", "en_fear.jsonl", [_ok("A quiet night."), _ok("i heard FOOTSTEPS, behind me!!")])
    with pytest.raises(HumanDataError, match="evaluation set") as info:
        read_authored(["I heard footsteps behind me."], root=path.parent)
    assert info.value.path == path and info.value.line == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"text": "x", "lang": "en", "emotion": "fear"}), "exactly the fields"),
        (json.dumps(_ok("   ")), "non-empty string"),
        (json.dumps(_ok("x", lang="fr")), "`lang` 'fr'"),
        (json.dumps(_ok("x", emotion="neutral")), "`emotion` 'neutral'"),
        (json.dumps(_ok("x", sentiment="mixed")), "`sentiment` 'mixed'"),
    ],
)
def test_a_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "authored", "en_fear.jsonl", [_ok("Fine first line."), line])
    with pytest.raises(HumanDataError, match=message) as info:
        read_authored(root=path.parent)
    assert info.value.path == path and info.value.line == 2
    assert f"en_fear.jsonl line 2" in str(info.value)


def test_a_sentence_written_twice_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "authored"
    _write(root, "en_fear.jsonl", [_ok("The lights went out.")])
    path = _write(root, "en_sadness.jsonl", [_ok("the lights went out", emotion="sadness")])
    with pytest.raises(HumanDataError, match=r"the same sentence as authored/en_fear\.jsonl:1") as info:
        read_authored(root=root)
    assert info.value.path == path


def test_no_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "authored").mkdir()
    with pytest.raises(HumanDataError, match="no authored"):
        read_authored(root=tmp_path / "authored")


def test_an_epoch_sees_authored_training_rows_repeat_times() -> None:
    import numpy as np

    from training.data.dataset import PRESETS, Corpus
    from training.train import epoch_rows

    corpus = Corpus(parts=[])
    corpus.split = np.array(["train", "train", "val", "train", "train"], dtype=object)
    corpus.human_set = np.array(["goemotions", "authored", "authored", "", "authored"], dtype=object)
    preset = PRESETS["full"]
    assert preset.authored and preset.authored_repeat > 1
    rows = epoch_rows(corpus, preset)
    counts = np.bincount(rows, minlength=5).tolist()
    assert counts == [1, preset.authored_repeat, 0, 1, preset.authored_repeat]
    assert epoch_rows(corpus, PRESETS["tiny"]).tolist() == [0, 1, 3, 4]


def test_the_untrained_batch_is_well_formed_and_never_the_eval_set_or_a_trained_sentence() -> None:
    """Batch 6 (`training/data/authored_untrained`, docs/DATA.md) waits outside the trained
    directory as a held-out set; it must stay usable: every line valid, none an evaluation or a trained sentence."""
    eval_texts = [r["text"] for r in read_eval_set()]
    untrained = read_authored(eval_texts, root=AUTHORED_DIR.parent / "authored_untrained")
    assert len(untrained) == 2100
    trained = {normalized(r.text) for r in read_authored(eval_texts)}
    assert not trained & {normalized(r.text) for r in untrained}
    assert all(r.origin.startswith("authored_untrained/") for r in untrained)
