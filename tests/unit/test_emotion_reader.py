"""The emotion reader (`pipeline.reader`, fitted by `training.reader`): it adds nothing until
fitted, adds its logits only to rows of its languages that have text, weighted by its gate, leaves
out the sources its language skips, the gate tells emotion-set text from sentiment-only text, and
the scale chosen on validation rows is what the network then serves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.config import get_profile
from pipeline.model import RedHeartNet
from pipeline.reader import NO_READER, READER_LANGS, reader_features, reader_index, reader_indices
from schemas import labels as L
from training.data.dataset import EMOTION_KEY, Corpus, net_inputs
from training.data.metrics import predict
from training.reader import SCALES, fit_reader, source_mask

CFG = get_profile("small")
N_PER = 20  # rows per emotion, language and split


def test_reader_index_follows_the_resolved_language() -> None:
    assert reader_index("en") == READER_LANGS.index("en")
    assert reader_index("ko-KR") == READER_LANGS.index("ko")
    assert reader_index("EN-us") == READER_LANGS.index("en")
    assert reader_index("ja") == NO_READER and reader_index("und") == NO_READER
    assert reader_indices(["ko", "zh", "en"]).tolist() == [1, NO_READER, 0]


def _pooled(batch: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, dim, generator=g) for dim in CFG.source_dims]


def test_an_unfitted_reader_adds_nothing() -> None:
    net = RedHeartNet(CFG).eval()
    pooled = _pooled(4)
    with torch.no_grad():
        plain = net(pooled)[EMOTION_KEY]
        with_lang = net(pooled, lang=reader_indices(["en", "ko", "en", "ja"]))[EMOTION_KEY]
    assert not net.reader.fitted
    torch.testing.assert_close(plain, with_lang, rtol=0, atol=0)


def test_a_fitted_reader_moves_only_rows_of_its_languages_that_have_text() -> None:
    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(generator=torch.Generator().manual_seed(1))
        net.reader.bias.fill_(0.5)
        net.reader.scale.fill_(2.0)
    pooled = _pooled(4)
    for p in pooled:
        p[3] = 0.0  # row 3 has no text
    present = torch.tensor([True, True, True, False])
    lang = reader_indices(["en", "ko", "ja", "en"])
    with torch.no_grad():
        plain = net(pooled, present)[EMOTION_KEY]
        read = net(pooled, present, lang=lang)[EMOTION_KEY]
        extra = net.reader(pooled, lang)
    assert not torch.allclose(read[0], plain[0]) and not torch.allclose(read[1], plain[1])
    torch.testing.assert_close(read[2:], plain[2:], rtol=0, atol=0)
    assert extra[2:].abs().max() == 0
    # what is added is exactly scale x (W[lang] x + b[lang]) on the normalised features, before the softmax
    x = torch.cat([torch.nn.functional.normalize(p[:1], dim=1) for p in pooled], dim=1)
    expected = 2.0 * (x @ net.reader.weight[0].T + net.reader.bias[0])
    torch.testing.assert_close(extra[:1], expected, rtol=1e-5, atol=1e-5)
    # a fitted gate weighs it per row: sigmoid(g x + g0)
    with torch.no_grad():
        net.reader.gate_weight.normal_(generator=torch.Generator().manual_seed(2))
        net.reader.gate_bias.fill_(-0.25)
        net.reader.gated.fill_(1.0)
        gated = net.reader(pooled, lang)
    g = torch.sigmoid(x @ net.reader.gate_weight - 0.25)
    assert 0 < float(g) < 1
    torch.testing.assert_close(gated[:1], g.unsqueeze(1) * expected, rtol=1e-5, atol=1e-5)
    assert gated[2:].abs().max() == 0


def test_a_fitted_reader_serves_a_bfloat16_network() -> None:
    """REDHEART_DTYPE=bfloat16 turns every buffer bfloat16; the read-out still runs (in float32)
    and adds what the float32 network adds, to bfloat16 rounding."""
    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(std=0.05, generator=torch.Generator().manual_seed(1))
        net.reader.scale.fill_(1.5)
        net.reader.gate_weight.normal_(generator=torch.Generator().manual_seed(2))
        net.reader.gated.fill_(1.0)
    pooled, lang = _pooled(3), reader_indices(["en", "ko", "ja"])
    with torch.no_grad():
        want = net.reader(pooled, lang)
        bf16 = RedHeartNet(CFG).eval()
        bf16.load_state_dict(net.state_dict())
        bf16.to(torch.bfloat16)
        got = bf16.reader([p.to(torch.bfloat16) for p in pooled], lang)
        assert torch.isfinite(bf16([p.to(torch.bfloat16) for p in pooled], lang=lang)[EMOTION_KEY].float()).all()
    assert got.dtype == torch.bfloat16 and want[:2].abs().min() > 0
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.02)
    assert got[2].abs().max() == 0


def _corpus(reviews: int = 0) -> tuple[Corpus, list[np.ndarray]]:
    """Authored-like rows in both languages whose emotion is written into one source only:
    English rows in the first encoder's vector (MiniLM), Korean rows in the second's (e5).
    `reviews`: that many sentiment-only rows (no human emotion set) per split as well, Korean,
    all pointing one way in the e5 vector, positive and negative alternately."""
    rng = np.random.default_rng(0)
    n_emotions = len(L.EMOTIONS)
    langs, splits, gold = [], [], []
    for lang in READER_LANGS:
        for split in ("train", "val"):
            for e in range(n_emotions):
                langs += [lang] * N_PER
                splits += [split] * N_PER
                gold += [e] * N_PER
    n_emotion_rows = len(gold)
    for split in ("train", "val"):
        langs += ["ko"] * reviews
        splits += [split] * reviews
        gold += [0] * reviews
    n = len(gold)
    features = [rng.normal(size=(n, dim)).astype(np.float32) for dim in CFG.source_dims[: len(CFG.encoders)]]
    centres = [rng.normal(size=(n_emotions, f.shape[1])).astype(np.float32) * 3 for f in features]
    review_direction = rng.normal(size=features[1].shape[1]).astype(np.float32) * 3
    for i, (lang, g) in enumerate(zip(langs, gold)):
        if i >= n_emotion_rows:
            features[1][i] += review_direction
            continue
        source = 0 if lang == "en" else 1
        features[source][i] += centres[source][g]
    corpus = Corpus(parts=[])
    corpus.texts = [f"row {i}" for i in range(n)]
    corpus.langs = np.array(langs, dtype=object)
    corpus.split = np.array(splits, dtype=object)
    is_review = np.arange(n) >= n_emotion_rows
    corpus.human_set = np.where(is_review, "nsmc", "authored").astype(object)
    corpus.human_emotion = np.eye(n_emotions, dtype=np.float32)[gold]
    corpus.human_emotion_mask = ~is_review
    corpus.pos_target = np.where(is_review, (np.arange(n) % 2).astype(np.float32), np.nan).astype(np.float32)
    return corpus, features


def test_fit_reads_each_language_from_its_sources_and_chooses_a_scale_on_validation() -> None:
    corpus, features = _corpus()
    net = RedHeartNet(CFG).eval()  # untrained: the reader is what knows the emotions here
    record = fit_reader(net, corpus, features)
    assert record["languages"]["en"]["fitted"] and record["languages"]["ko"]["fitted"]
    assert record["languages"]["ko"]["skipped_sources"] == ["minilm"]
    assert record["languages"]["en"]["train_accuracy"] > 0.95
    ko = READER_LANGS.index("ko")
    keep = torch.from_numpy(source_mask(net, "ko"))
    assert net.reader.weight[ko][:, ~keep].abs().max() == 0 and net.reader.weight[ko][:, keep].abs().max() > 0
    assert record["scale"] > 0 and record["scale"] in SCALES
    assert set(record["scale_grid"]) == {str(s) for s in SCALES}
    grid = record["scale_grid"]
    assert min(grid.values(), key=lambda e: e["score"]) is grid[str(record["scale"])]
    assert grid["0.0"]["score"] > grid[str(record["scale"])]["score"]
    assert not record["gate"]["fitted"] and not net.reader.gated  # no sentiment-only rows: no gate
    # the network now serves what was chosen: validation accuracy as the record says
    val = np.nonzero(corpus.split == "val")[0]
    right = predict(net, features, val, corpus)[EMOTION_KEY].argmax(axis=1) == corpus.human_emotion[val].argmax(axis=1)
    by_lang = {lang: float(right[corpus.langs[val] == lang].mean()) for lang in READER_LANGS}
    chosen = record["scale_grid"][str(record["scale"])]
    assert by_lang == pytest.approx({"en": chosen["authored_en"], "ko": chosen["authored_ko"]}, abs=1e-4)


def test_the_gate_keeps_the_reader_off_sentiment_only_text() -> None:
    corpus, features = _corpus(reviews=200)
    net = RedHeartNet(CFG).eval()
    record = fit_reader(net, corpus, features)
    assert record["gate"]["fitted"] and record["gate"]["rows"] == {"emotion_sets": 280, "sentiment_only": 200}
    assert record["gate"]["train_accuracy"] > 0.95
    assert all("sign_bce" in entry for entry in record["scale_grid"].values())
    val = np.nonzero(corpus.split == "val")[0]
    pooled, _, _, bags, lang = net_inputs(corpus, features, val, net.cfg.lexical)
    with torch.no_grad():
        x = reader_features(net._with_lexical(pooled, bags))
        gate = net.reader.gate(x).numpy()
    review = corpus.human_set[val] == "nsmc"
    assert gate[review].max() < 0.1 and gate[~review].min() > 0.9


def test_fit_is_deterministic_and_refuses_a_language_without_every_emotion() -> None:
    corpus, features = _corpus()
    first, second = RedHeartNet(CFG).eval(), RedHeartNet(CFG).eval()
    fit_reader(first, corpus, features)
    fit_reader(second, corpus, features)
    torch.testing.assert_close(first.reader.weight, second.reader.weight, rtol=0, atol=0)
    # Korean training rows of one emotion only: no Korean reader, and it says why
    ko_train = (corpus.langs == "ko") & (corpus.split == "train")
    corpus.human_emotion[ko_train] = np.eye(len(L.EMOTIONS), dtype=np.float32)[0]
    net = RedHeartNet(CFG).eval()
    record = fit_reader(net, corpus, features)
    assert not record["languages"]["ko"]["fitted"] and "1 of 7 emotions" in record["languages"]["ko"]["reason"]
    assert net.reader.weight[READER_LANGS.index("ko")].abs().max() == 0
