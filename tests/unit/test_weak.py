"""Labeling functions, the labels-file schema and the hand-labeled evaluation set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from schemas import labels as L
from training.data.dataset import EVAL_SET, read_eval_set
from training.data.templates import generate
from training.data.user_labels import LabelsFileError, read_labels
from training.weak import label


def dominant(text: str) -> str | None:
    emotion = label(text).emotion
    return None if emotion is None else L.EMOTIONS[int(np.argmax(emotion))]


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("I am so happy and excited about the trip!", "joy"),
        ("I miss you so much, I love you.", "love"),
        ("Wow, I can't believe it, totally unexpected.", "surprise"),
        ("I'm furious, this is so unfair.", "anger"),
        ("I'm terrified and anxious about tomorrow.", "fear"),
        ("I cried all night, I feel so lonely.", "sadness"),
        ("That was disgusting and gross.", "disgust"),
        ("오늘 정말 행복해요. 친구들과 좋은 시간을 보냈어요.", "joy"),
        ("엄마, 사랑해요. 항상 고마워요.", "love"),
        ("갑자기 문이 열려서 깜짝 놀랐다.", "surprise"),
        ("친구가 나를 배신해서 너무 화가 난다", "anger"),
        ("밤길이 너무 무서웠어.", "fear"),
        ("눈물이 나고 너무 슬프다.", "sadness"),
        ("냄새가 역겨워서 토할 것 같았다.", "disgust"),
    ],
)
def test_emotion_labeling_functions(text: str, emotion: str) -> None:
    assert dominant(text) == emotion


def test_no_emotion_cue_means_no_emotion_label() -> None:
    assert label("The meeting is at three in room 4.").emotion is None
    assert label("회의는 세 시에 4번 방에서 합니다.").emotion is None


@pytest.mark.parametrize(
    "text", ["I should have called my mother. I regret it.", "If only I had left earlier.",
             "그때 다른 선택을 했더라면 좋았을 텐데 후회된다", "공부를 더 했어야 했는데."]
)
def test_regret_cues_english_and_korean(text: str) -> None:
    weak = label(text)
    assert weak.targets["regret.regret_potential"][0] > 0.3
    assert weak.targets["regret.factors"][L.REGRET_FACTORS.index("counterfactual_thinking")] > 0.5
    assert label("We had lunch together.").targets["regret.regret_potential"][0] < 0.1


@pytest.mark.parametrize(
    ("text", "alternative"),
    [
        ("그때 엄마한테 화내지 말았어야 했는데.", "did_nothing"),  # 말았어야: not a verb list entry
        ("그 말을 하지 말걸 그랬어요.", "did_nothing"),
        ("좀 더 일찍 갔어야 했어.", "acted_differently"),  # 갔어야 = 가 + 았어야, fused
        ("그 사람에게 전화했어야 했다.", "acted_differently"),
        ("미리 예약할걸 그랬다.", "acted_differently"),
        ("미리 공부했으면 좋았을 텐데.", "acted_differently"),
        ("그 얘기를 들었더라면 달랐을 거야.", "acted_differently"),
        ("I should've called her back.", "acted_differently"),
    ],
)
def test_counterfactual_forms(text: str, alternative: str) -> None:
    weak = label(text)
    assert weak.targets["regret.factors"][L.REGRET_FACTORS.index("counterfactual_thinking")] > 0.5
    counter = weak.targets["regret.counterfactuals"]
    assert counter[L.COUNTERFACTUALS.index(alternative)] > 0.5
    other = "acted_differently" if alternative == "did_nothing" else "did_nothing"
    assert counter[L.COUNTERFACTUALS.index(other)] < 0.1


@pytest.mark.parametrize(
    "text",
    ["돈이 있어야 해.", "내일 비가 올걸.", "아침에 일찍 일어나야 했다.", "오늘은 날씨가 좋았다.", "밥을 먹었다."],
)
def test_korean_non_counterfactuals_stay_quiet(text: str) -> None:
    """'있어야' (needs), a bare '-ㄹ걸' (a guess), '-아야 했다' (had to) are not regret."""
    weak = label(text)
    assert weak.targets["regret.regret_potential"][0] < 0.1
    assert weak.targets["regret.factors"][L.REGRET_FACTORS.index("counterfactual_thinking")] < 0.1


def test_korean_regret_words() -> None:
    assert label("그때 엄마한테 화내지 말았어야 했는데, 너무 후회돼요.").targets["regret.regret_potential"][0] > 0.8
    assert label("정말 아쉬웠다.").targets["regret.regret_potential"][0] > 0.5


def test_cultural_bentham_legal_and_surd_cues() -> None:
    assert label("체면 때문에 아무 말도 못 했다").targets["emotion.cultural"][L.CULTURAL.index("chemyeon")] > 0.5
    assert label("오래 정이 든 이웃이다").targets["emotion.cultural"][L.CULTURAL.index("jeong")] > 0.5
    groups = label("Everyone in our community and all the people of this country were affected.")
    alone = label("I ate a sandwich.")
    extent = L.BENTHAM_SCORES.index("extent")
    assert groups.targets["bentham.scores"][extent] > alone.targets["bentham.scores"][extent] + 0.4
    assert label("Someone leaked my password and private photos.").targets["bentham.legal_risks"][
        L.LEGAL_RISKS.index("privacy")
    ] > 0.5
    because = label("The road was closed because of the flood.").targets["surd.kinds"]
    assert L.SURD_KINDS[int(np.argmax(because))] == "unique"
    nothing = label("The sky is blue.").targets["surd.kinds"]
    assert L.SURD_KINDS[int(np.argmax(nothing))] == "leak"
    weights = label("My mother paid the hospital bill.").targets["bentham.context_weights"]
    assert weights[L.BENTHAM_CONTEXT.index("family_financial")] > 0.9
    assert weights[L.BENTHAM_CONTEXT.index("society_legal")] < 0.1


def test_korean_lexicon_polarity() -> None:
    assert label("정말 즐기고 행복한 하루").valence is not None
    assert label("English only").valence is None


def test_labels_file_accepts_partial_rows(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"text": "I should have called.", "sentiment": "negative", "emotion": "sadness", "regret_potential": 0.9},
                {"text": "체면이 말이 아니다", "cultural": {"chemyeon": 1.0}, "surd_kind": "leak"},
                {"text": "Great!", "emotion": {"joy": 0.7, "surprise": 0.3}},
            ]
        )
    )
    rows = read_labels(path)
    assert [r.sentiment for r in rows] == ["negative", None, None]


def test_labels_file_rejects_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "ok", "emotion": "joy"}),
                json.dumps({"text": "bad emotion", "emotion": "happiness"}),
                "{not json",
                json.dumps({"text": "bad key", "bentham_scores": {"intensty": 0.5}}),
                json.dumps({"text": "out of range", "regret_potential": 1.5}),
                json.dumps({"text": "typo field", "sentimnet": "positive"}),
                json.dumps({"emotion": "joy"}),
                json.dumps({"text": "bad sum", "emotion": {"joy": 0.5}}),
            ]
        )
    )
    with pytest.raises(LabelsFileError) as info:
        read_labels(path)
    message = str(info.value)
    for expected in ("line 2", "unknown emotion 'happiness'", "line 3: not valid JSON", "line 4", "intensty",
                     "line 5", "line 6", "sentimnet", "line 7", "needs text", "line 8", "sum to 1"):
        assert expected in message, (expected, message)
    assert "line 1" not in message


def test_hand_labeled_eval_set_is_complete_and_separate() -> None:
    rows = read_eval_set()
    assert len(rows) >= 150
    for lang in ("en", "ko"):
        emotions = {r["emotion"] for r in rows if r["lang"] == lang}
        assert emotions == set(L.EMOTIONS), lang
    assert len({r["text"] for r in rows}) == len(rows)
    templated = {t for lang in ("en", "ko") for t, _ in generate(lang, 400)}
    assert not templated & {r["text"] for r in rows}
    assert EVAL_SET.name == "emotion_eval.jsonl"
