"""Loaders of the human-labeled data sets (GoEmotions, KOTE, NSMC-style) and the mapping of
their labels onto our seven emotions and sentiment (docs/DATA.md).

Fixtures are small files in the published formats, written to tmp_path; the real files are
read only by `test_real_files_have_the_published_row_counts`, when `REDHEART_DATA_DIR` names
them (`make test` sets it where the checkout has the data), and skipped otherwise."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from schemas import labels as L
from training.data.corpora import SENTIMENT_CLASSES
from training.data.human import (
    GOEMOTIONS,
    KOTE,
    HumanDataError,
    MissingDataFile,
    load_goemotions,
    load_kote,
    load_nsmc,
    row_targets,
    splits,
)
from training.data.human.mapping import mapping_table, scored_emotion
from training.data.human.rows import HumanRow
from training.data.human.splits import VALIDATION_FRACTION, held_out

ROOT = Path(__file__).resolve().parents[2]

# The published label lists (GoEmotions `emotions.txt`, KOTE's LABELS), in id order.
GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
KOTE_LABELS = (
    "불평/불만", "환영/호의", "감동/감탄", "지긋지긋", "고마움", "슬픔", "화남/분노", "존경", "기대감", "우쭐댐/무시함",
    "안타까움/실망", "비장함", "의심/불신", "뿌듯함", "편안/쾌적", "신기함/관심", "아껴주는", "부끄러움", "공포/무서움", "절망",
    "한심함", "역겨움/징그러움", "짜증", "어이없음", "없음", "패배/자기혐오", "귀찮음", "힘듦/지침", "즐거움/신남", "깨달음",
    "죄책감", "증오/혐오", "흐뭇함(귀여움/예쁨)", "당황/난처", "경악", "부담/안_내킴", "서러움", "재미없음", "불쌍함/연민", "놀람",
    "행복", "불안/걱정", "기쁨", "안심/신뢰",
)
# The authors' groupings, in their files' format (no trailing newline, as upstream).
EKMAN_JSON = """{
"anger": ["anger", "annoyance", "disapproval"],
"disgust": ["disgust"],
"fear": ["fear", "nervousness"],
"joy": ["joy", "amusement", "approval", "excitement", "gratitude",  "love", "optimism", "relief", "pride", "admiration", "desire", "caring"],
"sadness": ["sadness", "disappointment", "embarrassment", "grief",  "remorse"],
"surprise": ["surprise", "realization", "confusion", "curiosity"]
}"""
SENTIMENT_JSON = """{
"positive": ["amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride", "admiration", "gratitude", "relief", "approval"],
"negative": ["fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness", "grief", "disgust", "anger", "annoyance", "disapproval"],
"ambiguous": ["realization", "surprise", "curiosity", "confusion"]
}"""
# A few rows in each published format: GoEmotions text<TAB>ids<TAB>comment id; KOTE ID<TAB>text<TAB>ids;
# NSMC id<TAB>document<TAB>label with a header.
GOEMOTIONS_TRAIN = (
    "My favourite food is anything I didn't have to cook myself.\t27\teebbqej\n"
    "WHY THE FUCK IS BAYLESS ISOING\t2\teezlygj\n"
    "Thank you so much, [NAME]! I love it\t15,18\ted7ypvh\n"
    "I'm not sure what you mean, honestly curious\t6,7\tee4z1c0\n"
    "Great effort but that ending was a real letdown\t0,9\tef4ghjk\n"
    "  To make her feel threatened  \t14\ted7ypvi\n"
)
GOEMOTIONS_DEV = "Is this in New Orleans?? I really feel like this is New Orleans.\t27\tedgurhb\n"
GOEMOTIONS_TEST = "I’m really sorry about your situation :( Although I love the names Sapphira, Cirilla, and Scarlett!\t25\teecwqtt\n"
KOTE_VAL = (
    "5954\t음료가 몇푼이나 한다고.. 미국같으면 바로 바꿔줄텐데 참 어이없네요 그 카페\t0,6,10,22,23,36\n"
    "26060\t아버님 끝까지 진실이 밝혀질때까지 응원합니다.\t1,2,7,8,11,15,16,38,43\n"
    "14747\t귀여우시다 ㅋㅋㅋㅋㅋㅋ 나도 딸냄 크면 써먹어야지..\t1,2,8,15,28,29,32,42\n"
    "3021\t그렇군요\t24\n"
    "40211\t비주얼센터 절대 데뷔해\t2,8,13,15,16,24,32,40,42\n"
)
KOTE_TEST = "877\t문재앙 수괴늠의 시계, 아니 세상은 거꾸로 돈다.\t0,6,12,22,31\n"
NSMC_TRAIN = (
    "id\tdocument\tlabel\n"
    "9588861\t너무 유치 조폭은 박력이 중요한데 여자는 별로\t0\n"
    "9562687\t몇번을 다시봐도 재미있는 드라마 최고!\t1\n"
    "9034521\t굿\t1\n"
)
NSMC_TEST = "id\tdocument\tlabel\n6270596\t굳 ㅋ\t1\n9274899\tGDNTOPCLASSINTHECLUB\t0\n"


def _vec(**weights: float) -> tuple[float, ...]:
    return tuple(float(weights.get(e, 0.0)) for e in L.EMOTIONS)


def _write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _write(root, "goemotions/emotions.txt", "\n".join(GOEMOTIONS_LABELS))  # no trailing newline, as upstream
    _write(root, "goemotions/ekman_mapping.json", EKMAN_JSON)
    _write(root, "goemotions/sentiment_dict.json", SENTIMENT_JSON)
    _write(root, "goemotions/train.tsv", GOEMOTIONS_TRAIN)
    _write(root, "goemotions/dev.tsv", GOEMOTIONS_DEV)
    _write(root, "goemotions/test.tsv", GOEMOTIONS_TEST)
    _write(root, "kote/labels.txt", "\n".join(KOTE_LABELS) + "\n")
    _write(root, "kote/val.tsv", KOTE_VAL)
    _write(root, "kote/test.tsv", KOTE_TEST)
    _write(root, "nsmc/ratings_train.tsv", NSMC_TRAIN)
    _write(root, "nsmc/ratings_test.tsv", NSMC_TEST)
    return root


# ------------------------------------------------------------------ loaders on the published formats


def test_goemotions_rows(data_dir: Path) -> None:
    rows = load_goemotions(data_dir, "train")
    assert [r.source_id for r in rows] == ["eebbqej", "eezlygj", "ed7ypvh", "ee4z1c0", "ef4ghjk", "ed7ypvi"]
    neutral, anger, thanks, curious, mixed, fear = rows
    assert neutral.text == "My favourite food is anything I didn't have to cook myself."
    assert (neutral.emotion, neutral.sentiment, neutral.source_labels) == (None, "neutral", ("neutral",))
    assert neutral.pos_target == 0.5 and neutral.sentiment_index == SENTIMENT_CLASSES.index("neutral")
    assert (anger.emotion, anger.sentiment, anger.pos_target) == (_vec(anger=1), "negative", 0.0)
    # gratitude -> joy, love -> love (not folded into joy as in Ekman's grouping)
    assert thanks.source_labels == ("gratitude", "love")
    assert thanks.emotion == _vec(joy=0.5, love=0.5) and thanks.sentiment == "positive" and thanks.pos_target == 1.0
    # confusion + curiosity: ambiguous labels cast no sentiment vote, and neither is taught as an emotion
    assert curious.emotion is None and curious.sentiment is None
    assert mixed.emotion == _vec(joy=0.5, sadness=0.5) and mixed.sentiment is None  # 1 positive vs 1 negative
    assert fear.text == "To make her feel threatened"  # surrounding whitespace stripped
    assert {r.lang for r in rows} == {"en"} and {r.dataset for r in rows} == {"goemotions"}
    assert rows[2].origin == "goemotions/train.tsv:3"
    assert len(load_goemotions(data_dir, "dev")) == 1 and load_goemotions(data_dir, "test")[0].emotion == _vec(sadness=1)


def test_kote_rows(data_dir: Path) -> None:
    rows = load_kote(data_dir, "val")
    complaint, cheer, cute, none, none_and_more = rows
    assert complaint.source_labels == ("불평/불만", "화남/분노", "안타까움/실망", "짜증", "어이없음", "서러움")
    assert complaint.emotion == pytest.approx(_vec(anger=4 / 6, sadness=2 / 6)) and complaint.sentiment == "negative"
    # 6 positive labels vs 1 negative (불쌍함/연민), 비장함 teaches nothing: positive; 신기함/관심 (interest)
    # teaches no emotion (as GoEmotions curiosity) but still counts as surprise when a figure is scored
    assert cheer.sentiment == "positive" and cheer.emotion is not None
    assert cheer.emotion == pytest.approx(_vec(joy=5 / 7, love=1 / 7, sadness=1 / 7))
    assert scored_emotion(cheer.source_labels, KOTE) == pytest.approx(_vec(joy=5 / 8, love=1 / 8, surprise=1 / 8,
                                                                           sadness=1 / 8))
    assert cute.emotion == pytest.approx(_vec(joy=5.5 / 7, love=0.5 / 7, surprise=1 / 7)) and cute.sentiment == "positive"
    assert (none.emotion, none.sentiment) == (None, "neutral")
    # 없음 beside other labels: the others decide
    assert none_and_more.sentiment == "positive" and none_and_more.emotion is not None
    assert {r.lang for r in rows} == {"ko"} and complaint.source_id == "5954"
    assert load_kote(data_dir, "test")[0].sentiment == "negative"
    with pytest.raises(ValueError, match="train.tsv is not part of our copy"):
        load_kote(data_dir, "train")


def test_nsmc_rows(data_dir: Path) -> None:
    rows = load_nsmc(data_dir, "train")
    assert [(r.source_id, r.sentiment, r.emotion, r.source_labels) for r in rows] == [
        ("9588861", "negative", None, ("negative",)),
        ("9562687", "positive", None, ("positive",)),
        ("9034521", "positive", None, ("positive",)),
    ]
    assert rows[0].origin == "nsmc/ratings_train.tsv:2"  # line 1 is the header
    assert [r.pos_target for r in load_nsmc(data_dir, "test")] == [1.0, 0.0]


def test_data_dir_comes_from_the_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDHEART_DATA_DIR", str(data_dir))
    assert len(load_nsmc(split="test")) == 2
    monkeypatch.delenv("REDHEART_DATA_DIR")
    with pytest.raises(HumanDataError, match="--data-dir or set REDHEART_DATA_DIR"):
        load_nsmc(split="test")


def test_splits_per_data_set(data_dir: Path) -> None:
    go = splits("goemotions", data_dir)
    assert (len(go.train), len(go.validation), len(go.test)) == (6, 1, 1)
    assert "goemotions/dev.tsv" in go.provenance
    for name, file in (("kote", "kote/val.tsv"), ("nsmc", "nsmc/ratings_train.tsv")):
        s = splits(name, data_dir)
        # validation is carved out of the training file, by row id, disjoint from train
        assert {r.origin.split(":")[0] for r in s.train + s.validation} == {file}
        ids_train, ids_val = {r.source_id for r in s.train}, {r.source_id for r in s.validation}
        assert not ids_train & ids_val
        assert ids_val == {i for i in ids_train | ids_val if held_out(name, i, VALIDATION_FRACTION[name])}
        assert all(r.origin.split(":")[0] != file for r in s.test)
    with pytest.raises(ValueError, match="unknown human-labeled data set"):
        splits("imdb", data_dir)


def test_split_membership_depends_on_ids_not_order(data_dir: Path) -> None:
    before = splits("kote", data_dir)
    lines = KOTE_VAL.splitlines(keepends=True)
    _write(data_dir, "kote/val.tsv", "".join(reversed(lines)))
    after = splits("kote", data_dir)
    assert {r.source_id for r in after.validation} == {r.source_id for r in before.validation}
    # a larger id space: the held-out share is close to the fraction
    share = sum(held_out("kote", str(i), 0.2) for i in range(10_000)) / 10_000
    assert 0.18 < share < 0.22


# ------------------------------------------------------------------ malformed files: file and line named


@pytest.mark.parametrize(
    ("rel", "content", "message"),
    [
        ("goemotions/train.tsv", "fine text\t27\taaa\nno label column\tbbb\n", r"train\.tsv line 2: 2 tab-separated columns, expected 3"),
        ("goemotions/train.tsv", "fine text\t27\taaa\ntoo\tmany\tcolumns\there\n", r"train\.tsv line 2: 4 tab-separated"),
        ("goemotions/train.tsv", "fine\t27\taaa\nok\t2\tbbb\nbad id\t28\tccc\n", r"train\.tsv line 3: unknown label id 28"),
        ("goemotions/train.tsv", "bad\t2,x\taaa\n", r"train\.tsv line 1: label id 'x' is not"),
        ("goemotions/train.tsv", "bad\t\taaa\n", r"train\.tsv line 1: no label id"),
        ("goemotions/train.tsv", "twice\t2,2\taaa\n", r"train\.tsv line 1: label id 2 listed twice"),
        ("goemotions/train.tsv", "ok\t2\taaa\n   \t2\tbbb\n", r"train\.tsv line 2: empty text"),
        ("goemotions/train.tsv", "ok\t2\taaa\nagain\t3\taaa\n", r"train\.tsv line 2: id 'aaa' already on line 1"),
        ("goemotions/train.tsv", "ok\t2\taaa\n\nnext\t3\tbbb\n", r"train\.tsv line 2: empty line"),
        ("goemotions/train.tsv", "ok\t2\taaa\r\n", r"train\.tsv line 1: CRLF line ending"),
        ("goemotions/train.tsv", "ok\t2\taaa\n".encode() + "caf\xe9\t2\tbbb\n".encode("latin-1"), r"train\.tsv line 2: not valid UTF-8"),
        ("goemotions/train.tsv", b"\xef\xbb\xbfok\t2\taaa\n", r"train\.tsv line 1: starts with a UTF-8 byte-order mark"),
        ("goemotions/emotions.txt", "\n".join(GOEMOTIONS_LABELS[:18] + ("affection",) + GOEMOTIONS_LABELS[19:]),
         r"emotions\.txt line 19: label 'affection' where the published list has 'love'"),
        ("goemotions/emotions.txt", "\n".join(GOEMOTIONS_LABELS[:-1]), r"emotions\.txt: 27 labels, the published list has 28"),
        ("goemotions/ekman_mapping.json", EKMAN_JSON.replace('"fear", "nervousness"', '"fear"').replace(
            '"disgust"]', '"disgust", "nervousness"]'), r"ekman_mapping\.json: 'nervousness' -> 'disgust'"),
        ("goemotions/ekman_mapping.json", EKMAN_JSON[:-2], r"ekman_mapping\.json line \d+: not JSON"),
        ("goemotions/sentiment_dict.json", SENTIMENT_JSON.replace('"realization", ', ""),
         r"sentiment_dict\.json: 'realization' is 'neutral' here"),
        ("kote/val.tsv", "1\t좋아요\t42\n2\t싫어요\t44\n", r"val\.tsv line 2: unknown label id 44 \(ids are 0-43\)"),
        ("kote/val.tsv", "1\t좋아요\n", r"val\.tsv line 1: 2 tab-separated columns, expected 3 \(id, text, labels\)"),
        ("kote/val.tsv", "1\t좋아요\t42\n".encode() + "2\t".encode() + "싫어요".encode("euc-kr") + b"\t5\n",
         r"val\.tsv line 2: not valid UTF-8"),
        ("kote/labels.txt", "\n".join(KOTE_LABELS[:24] + ("중립",) + KOTE_LABELS[25:]) + "\n", r"labels\.txt line 25: label '중립'"),
        ("nsmc/ratings_train.tsv", "id\ttext\tlabel\n1\t좋다\t1\n", r"ratings_train\.tsv line 1: header"),
        ("nsmc/ratings_train.tsv", "id\tdocument\tlabel\n1\t좋다\t1\n2\t보통\t2\n", r"ratings_train\.tsv line 3: label '2'"),
        ("nsmc/ratings_train.tsv", "id\tdocument\tlabel\n1\t좋다\t1\n2\t\t0\n", r"ratings_train\.tsv line 3: empty text"),
        ("nsmc/ratings_train.tsv", "", r"ratings_train\.tsv: empty file"),
    ],
)
def test_malformed_files_are_errors_naming_file_and_line(data_dir: Path, rel: str, content: str | bytes,
                                                         message: str) -> None:
    _write(data_dir, rel, content)
    loader = {"goemotions": load_goemotions, "kote": load_kote, "nsmc": load_nsmc}[rel.split("/")[0]]
    split = {"goemotions": "train", "kote": "val", "nsmc": "train"}[rel.split("/")[0]]
    with pytest.raises(HumanDataError, match=message) as info:
        loader(data_dir, split)
    assert str(data_dir / rel) in str(info.value)


def test_missing_file_is_named(data_dir: Path) -> None:
    (data_dir / "kote" / "labels.txt").unlink()
    with pytest.raises(MissingDataFile, match=r"kote/labels\.txt: missing"):
        load_kote(data_dir, "val")
    with pytest.raises(MissingDataFile, match="data directory does not exist"):
        load_nsmc(data_dir / "nowhere", "test")


def test_sha256sums_are_verified_when_present(data_dir: Path) -> None:
    def line(rel: str) -> str:
        return f"{hashlib.sha256((data_dir / rel).read_bytes()).hexdigest()}  {rel}\n"

    _write(data_dir, "SHA256SUMS", line("nsmc/ratings_test.tsv") + line("nsmc/ratings_train.tsv"))
    assert len(load_nsmc(data_dir, "test")) == 2
    _write(data_dir, "nsmc/ratings_test.tsv", NSMC_TEST.replace("굳 ㅋ", "굳 ㅋㅋ"))
    with pytest.raises(HumanDataError, match=r"ratings_test\.tsv: sha256 [0-9a-f]{64} differs from SHA256SUMS line 1"):
        load_nsmc(data_dir, "test")
    assert len(load_nsmc(data_dir, "test", verify=False)) == 2
    _write(data_dir, "SHA256SUMS", "not a checksum line\n")
    with pytest.raises(HumanDataError, match="SHA256SUMS line 1: not a sha256sum line"):
        load_nsmc(data_dir, "test")


# ------------------------------------------------------------------ the mapping


def test_every_label_has_a_mapping() -> None:
    assert tuple(GOEMOTIONS) == GOEMOTIONS_LABELS and len(GOEMOTIONS) == 28  # 27 emotions + neutral
    assert tuple(KOTE) == KOTE_LABELS and len(KOTE) == 44
    for table in (GOEMOTIONS, KOTE):
        for name, m in table.items():
            assert m.polarity in ("positive", "negative", "ambiguous", "neutral"), name
            assert m.note, name
            if m.emotion is not None:
                assert set(m.emotion) <= set(L.EMOTIONS) and sum(m.emotion.values()) == pytest.approx(1.0), name
    # only the no-emotion labels (and KOTE's 'grim resolve') mean no emotion of ours
    assert [n for n, m in GOEMOTIONS.items() if m.emotion is None] == ["neutral"]
    assert [n for n, m in KOTE.items() if m.emotion is None] == ["비장함", "없음"]
    # two GoEmotions labels and their two KOTE kin mean surprise when scored but are not taught (docs/DATA.md)
    assert [n for n, m in GOEMOTIONS.items() if not m.taught] == ["confusion", "curiosity"]
    assert [n for n, m in KOTE.items() if not m.taught] == ["신기함/관심", "당황/난처"]
    assert [n for n, m in GOEMOTIONS.items() if m.polarity == "neutral"] == ["neutral"]
    assert [n for n, m in KOTE.items() if m.polarity == "neutral"] == ["없음"]
    # our `love` is taught by GoEmotions' love (not folded into joy as in Ekman's grouping)
    assert dict(GOEMOTIONS["love"].emotion or {}) == {"love": 1.0}


def test_polarity_signs() -> None:
    positive = ["joy", "love", "gratitude", "admiration", "amusement", "excitement", "optimism", "relief",
                "기쁨", "행복", "고마움", "즐거움/신남", "감동/감탄", "안심/신뢰"]
    negative = ["anger", "sadness", "fear", "disgust", "grief", "remorse", "annoyance", "nervousness",
                "슬픔", "화남/분노", "공포/무서움", "역겨움/징그러움", "절망", "증오/혐오", "짜증", "불안/걱정"]
    table = {**GOEMOTIONS, **KOTE}
    for name in positive:
        assert table[name].polarity == "positive", name
        assert row_targets([name], table)[1] == "positive", name
    for name in negative:
        assert table[name].polarity == "negative", name
        assert row_targets([name], table)[1] == "negative", name
    # a polar label's emotion lies on its own side of overall_sentiment (joy, love, surprise count positive)
    for name, m in table.items():
        if m.polarity in ("positive", "negative") and m.emotion is not None:
            side = L.POSITIVE_EMOTIONS if m.polarity == "positive" else L.NEGATIVE_EMOTIONS
            assert set(m.emotion) <= set(side), name


def test_row_rule() -> None:
    assert row_targets(["neutral"], GOEMOTIONS) == (None, "neutral")
    assert row_targets(["neutral", "curiosity"], GOEMOTIONS) == (None, "neutral")  # curiosity: not taught
    assert row_targets(["neutral", "realization"], GOEMOTIONS) == (_vec(surprise=1), "neutral")
    assert row_targets(["curiosity", "fear"], GOEMOTIONS) == (_vec(fear=1), "negative")
    # figures score an untaught label as what it means
    assert scored_emotion(["curiosity", "fear"], GOEMOTIONS) == _vec(surprise=0.5, fear=0.5)
    assert scored_emotion(["neutral"], GOEMOTIONS) is None
    assert scored_emotion(["슬픔", "놀람"], KOTE) == row_targets(["슬픔", "놀람"], KOTE)[0]
    assert row_targets(["neutral", "joy"], GOEMOTIONS) == (_vec(joy=1), "positive")
    assert row_targets(["surprise"], GOEMOTIONS) == (_vec(surprise=1), None)
    assert row_targets(["joy", "sadness"], GOEMOTIONS)[1] is None  # mixed: no sentiment
    assert row_targets(["joy", "love", "sadness"], GOEMOTIONS)[1] == "positive"  # 2 : 1
    assert row_targets(["joy", "anger", "sadness"], GOEMOTIONS)[1] == "negative"
    assert row_targets(["joy", "love", "anger", "sadness", "fear"], GOEMOTIONS)[1] is None  # 2 : 3
    assert row_targets(["없음"], KOTE) == (None, "neutral")
    assert row_targets(["없음", "비장함"], KOTE) == (None, "neutral")
    assert row_targets(["비장함"], KOTE) == (None, None)
    assert row_targets(["없음", "슬픔"], KOTE) == (_vec(sadness=1), "negative")


def test_docs_show_the_mapping_in_code() -> None:
    doc = (ROOT / "docs" / "DATA.md").read_text(encoding="utf-8")
    for dataset in ("goemotions", "kote"):
        assert mapping_table(dataset) in doc, f"docs/DATA.md: regenerate the {dataset} table with mapping_table()"
    assert "DATA.md" in (ROOT / "docs" / "MODEL_CARD.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------ the real files, where present


def test_real_files_have_the_published_row_counts() -> None:
    root = os.environ.get("REDHEART_DATA_DIR")
    if not root or not (Path(root) / "goemotions").is_dir():
        pytest.skip("the human-labeled data sets are not here: set REDHEART_DATA_DIR (make test does when the "
                    "checkout has them; layout in docs/DATA.md)")
    counts = {
        ("goemotions", "train"): 43_410, ("goemotions", "dev"): 5_426, ("goemotions", "test"): 5_427,
        ("kote", "val"): 5_000, ("kote", "test"): 5_000, ("nsmc", "train"): 150_000, ("nsmc", "test"): 50_000,
    }
    loaders = {"goemotions": load_goemotions, "kote": load_kote, "nsmc": load_nsmc}
    for (name, split), n in counts.items():
        rows = loaders[name](root, split)  # verified against SHA256SUMS where it lists them
        assert len(rows) == n, (name, split)
        if name == "nsmc":
            negative = sum(r.sentiment == "negative" for r in rows)
            assert (negative, n - negative) == {"train": (74_964, 75_036), "test": (25_036, 24_964)}[split]
    love = sum(1 for r in load_goemotions(root, "train") if "love" in r.source_labels)
    assert love == 2_086  # the published label count
    kote = splits("kote", root)
    assert len(kote.train) + len(kote.validation) == 5_000 and 800 < len(kote.validation) < 1_200


def _row(emotion: tuple[float, ...] | None, sentiment: str | None) -> HumanRow:
    return HumanRow("t", emotion, sentiment, (), "authored", "0", "en", "f:1")


def test_a_sentiment_that_contradicts_the_rows_own_emotion_teaches_nothing() -> None:
    """overall_sentiment counts surprise positive: a row taught surprise and a neutral or negative
    positive mass would learn surprise with the rest of its mass negative."""
    assert _row(_vec(surprise=1), "positive").pos_target == 1.0
    assert _row(_vec(surprise=1), "neutral").pos_target is None
    assert _row(_vec(surprise=1), "negative").pos_target is None
    assert _row(_vec(sadness=1), "positive").pos_target is None
    assert _row(_vec(sadness=1), "negative").pos_target == 0.0
    assert _row(_vec(surprise=0.5, sadness=0.5), "negative").pos_target == 0.0  # both sides: the label decides
    assert _row(None, "neutral").pos_target == 0.5 and _row(None, None).pos_target is None
    # GoEmotions `neutral` + `realization`: surprise and a neutral sentiment, now no sentiment target
    emotion, sentiment = row_targets(["neutral", "realization"], GOEMOTIONS)
    assert _row(emotion, sentiment).pos_target is None and _row(emotion, sentiment).sentiment_index == 1
