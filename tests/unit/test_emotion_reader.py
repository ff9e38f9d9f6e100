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
from pipeline.reader import NO_READER, READER_LANGS, ngram_features, reader_features, reader_index, reader_indices
from schemas import labels as L
from training.data.dataset import EMOTION_KEY, Corpus, net_inputs
from training.data.metrics import predict
from training.reader import candidate_key, candidates, fit_reader, source_mask

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
        r, w = net.reader.read(reader_features(pooled), lang)
    assert not torch.allclose(read[0], plain[0]) and not torch.allclose(read[1], plain[1])
    torch.testing.assert_close(read[2:], plain[2:], rtol=0, atol=0)
    assert r[2:].abs().max() == 0 and w[2:].abs().max() == 0 and w[:2].tolist() == [1.0, 1.0]
    # the read-out is exactly W[lang] x + b[lang] on the normalised features
    x = torch.cat([torch.nn.functional.normalize(p[:1], dim=1) for p in pooled], dim=1)
    expected = x @ net.reader.weight[0].T + net.reader.bias[0]
    torch.testing.assert_close(r[:1], expected, rtol=1e-5, atol=1e-5)
    # with nothing mixed in, what reaches the softmax is z + scale x w x r
    z = torch.randn(4, len(L.EMOTIONS), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(net.reader.combine(z, r, w, lang), z + 2.0 * w.unsqueeze(1) * r, rtol=1e-6, atol=1e-6)
    # a fitted gate weighs it per row: sigmoid(g x + g0)
    with torch.no_grad():
        net.reader.gate_weight.normal_(generator=torch.Generator().manual_seed(2))
        net.reader.gate_bias.fill_(-0.25)
        net.reader.gated.fill_(1.0)
        _, gated = net.reader.read(reader_features(pooled), lang)
    g = torch.sigmoid(x @ net.reader.gate_weight - 0.25)
    assert 0 < float(g) < 1
    torch.testing.assert_close(gated[:1], g, rtol=1e-5, atol=1e-6)
    assert gated[2:].abs().max() == 0


def test_the_mixture_is_the_documented_distribution_and_spares_rows_without_a_reader() -> None:
    """p = (1 - a w) softmax((z + s w r) / T) + a w softmax(r), per language's (s, a, T);
    rows of no reader keep z bit for bit, and gradients stay finite (explanations use them)."""
    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(generator=torch.Generator().manual_seed(1))
        net.reader.gate_weight.normal_(std=0.1, generator=torch.Generator().manual_seed(2))
        net.reader.gated.fill_(1.0)
        en, ko = READER_LANGS.index("en"), READER_LANGS.index("ko")
        net.reader.scale[en], net.reader.mix[en], net.reader.net_temperature[en] = 1.0, 0.5, 2.0
        net.reader.scale[ko], net.reader.mix[ko], net.reader.net_temperature[ko] = 0.0, 1.0, 1.5
    pooled, lang = _pooled(4), reader_indices(["en", "ko", "ja", "ko"])
    z = torch.randn(4, len(L.EMOTIONS), generator=torch.Generator().manual_seed(3), requires_grad=True)
    r, w = net.reader.read(reader_features(pooled), lang)
    out = net.reader.combine(z, r, w, lang)
    s = torch.tensor([1.0, 0.0, 0.0, 0.0])
    a = torch.tensor([0.5, 1.0, 0.0, 1.0])
    t = torch.tensor([2.0, 1.5, 1.0, 1.5])
    aw = (a * w).unsqueeze(1)
    want = (1 - aw) * torch.softmax((z + (s * w).unsqueeze(1) * r) / t.unsqueeze(1), 1) + aw * torch.softmax(r, 1)
    for row in (0, 1, 3):
        torch.testing.assert_close(torch.softmax(out[row], 0), want[row], rtol=1e-5, atol=1e-6)
    assert torch.equal(out[2], z[2])  # "ja": no reader
    out.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # through the network: the served emotion distribution is that softmax (temperature 1)
    with torch.no_grad():
        served = net(pooled, lang=lang)[EMOTION_KEY]
        plain = net(pooled)[EMOTION_KEY]
    torch.testing.assert_close(served[2], plain[2], rtol=0, atol=0)
    assert not torch.allclose(served[1], plain[1])


def test_a_fitted_reader_serves_a_bfloat16_network() -> None:
    """REDHEART_DTYPE=bfloat16 turns every buffer bfloat16; the read-out still runs (in float32)
    and the network serves what the float32 one does, to bfloat16 rounding."""
    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(std=0.05, generator=torch.Generator().manual_seed(1))
        net.reader.scale.fill_(1.5)
        net.reader.mix.fill_(0.5)
        net.reader.gate_weight.normal_(generator=torch.Generator().manual_seed(2))
        net.reader.gated.fill_(1.0)
    pooled, lang = _pooled(3), reader_indices(["en", "ko", "ja"])
    with torch.no_grad():
        want_r, want_w = net.reader.read(reader_features(pooled), lang)
        want = net(pooled, lang=lang)[EMOTION_KEY]
        bf16 = RedHeartNet(CFG).eval()
        bf16.load_state_dict(net.state_dict())
        bf16.to(torch.bfloat16)
        half = [p.to(torch.bfloat16) for p in pooled]
        got_r, got_w = bf16.reader.read(reader_features(half), lang)
        got = bf16(half, lang=lang)[EMOTION_KEY]
    assert got_r.dtype == torch.float32 and want_r[:2].abs().min() > 0
    torch.testing.assert_close(got_r, want_r, rtol=0.05, atol=0.02)
    torch.testing.assert_close(got_w, want_w, rtol=0.05, atol=0.02)
    assert got.dtype == torch.bfloat16 and torch.isfinite(got.float()).all()
    torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.03)
    assert got_r[2].abs().max() == 0


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


def test_fit_reads_each_language_from_its_sources_and_chooses_how_to_combine_on_validation() -> None:
    corpus, features = _corpus()
    net = RedHeartNet(CFG).eval()  # untrained: the reader is what knows the emotions here
    record = fit_reader(net, corpus, features)
    assert record["languages"]["en"]["fitted"] and record["languages"]["ko"]["fitted"]
    assert record["languages"]["ko"]["skipped_sources"] == ["minilm"]
    assert record["languages"]["en"]["train_accuracy"] > 0.95
    ko = READER_LANGS.index("ko")
    keep = torch.from_numpy(source_mask(net, "ko"))
    assert net.reader.weight[ko][:, ~keep].abs().max() == 0 and net.reader.weight[ko][:, keep].abs().max() > 0
    grids = record["grid"]
    for lang in READER_LANGS:
        grid, chosen = grids[lang], record["languages"][lang]["chosen"]
        assert set(grid) == {candidate_key(c) for c in candidates()}
        assert grid[chosen]["score"] == min(e["score"] for e in grid.values())
        assert grid["scale=0.0 mix=0.0 T=1.0"]["score"] > grid[chosen]["score"]  # the reader pays here
        i = READER_LANGS.index(lang)
        served = (float(net.reader.scale[i]), float(net.reader.mix[i]), float(net.reader.net_temperature[i]))
        assert candidate_key(served) == chosen
    assert not record["gate"]["fitted"] and not net.reader.gated  # no sentiment-only rows: no gate
    # the network now serves what was chosen: validation accuracy as the record says
    val = np.nonzero(corpus.split == "val")[0]
    right = predict(net, features, val, corpus)[EMOTION_KEY].argmax(axis=1) == corpus.human_emotion[val].argmax(axis=1)
    by_lang = {lang: float(right[corpus.langs[val] == lang].mean()) for lang in READER_LANGS}
    want = {lang: grids[lang][record["languages"][lang]["chosen"]]["authored"] for lang in READER_LANGS}
    assert by_lang == pytest.approx(want, abs=1e-4)


def test_the_gate_keeps_the_reader_off_sentiment_only_text() -> None:
    corpus, features = _corpus(reviews=200)
    net = RedHeartNet(CFG).eval()
    record = fit_reader(net, corpus, features)
    assert record["gate"]["fitted"] and record["gate"]["rows"] == {"emotion_sets": 280, "sentiment_only": 200}
    assert record["gate"]["train_accuracy"] > 0.95
    assert all("sign_bce" in entry for entry in record["grid"]["ko"].values())  # Korean reviews: scored
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


def test_a_checkpoint_of_one_summed_scale_loads_and_serves_what_it_served(tmp_path) -> None:
    """Checkpoints written before the per-language choice hold one scalar `reader.scale` and no
    `reader.mix` / `reader.net_temperature`; they load (`pipeline.weights.load_into`) as that
    scale for every language, nothing mixed in: the same answers, bit for bit."""
    from pipeline.weights import load_into

    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(std=0.1, generator=torch.Generator().manual_seed(1))
        net.reader.scale.fill_(1.5)
    old = {k: v for k, v in net.state_dict().items() if k not in ("reader.mix", "reader.net_temperature")}
    old["reader.scale"] = torch.tensor(1.5)
    loaded = RedHeartNet(CFG).eval()
    load_into(loaded, old, tmp_path)
    assert loaded.reader.scale.tolist() == [1.5] * len(READER_LANGS) and not loaded.reader.mix.any()
    pooled, lang = _pooled(3), reader_indices(["en", "ko", "ja"])
    with torch.no_grad():
        torch.testing.assert_close(loaded(pooled, lang=lang)[EMOTION_KEY], net(pooled, lang=lang)[EMOTION_KEY],
                                   rtol=0, atol=0)


def test_ngram_features_are_sublinear_tf_idf_normalised_per_text() -> None:
    """Known answer: a bag of ids 5, 5, 7, an empty bag, a bag of id 7."""
    idf = torch.ones(16)
    idf[5], idf[7] = 2.0, 3.0
    ids, offsets = torch.tensor([5, 5, 7, 7]), torch.tensor([0, 3, 3])
    row, col, value = ngram_features(ids, offsets, idf)
    a, b = (1 + np.log(2)) * 2.0, 3.0
    norm = np.hypot(a, b)
    assert row.tolist() == [0, 0, 2] and col.tolist() == [5, 7, 7]
    np.testing.assert_allclose(value.numpy(), [a / norm, b / norm, 1.0], rtol=1e-6)


# One feeling word per emotion and language: in these rows the emotion is in the words only.
_WORDS = {"en": ("delighted", "adore", "astonished", "furious", "terrified", "heartbroken", "revolting"),
          "ko": ("기뻤다", "사랑해", "놀랐다", "화났다", "무서웠다", "슬펐다", "역겨웠다")}


def _word_corpus() -> tuple[Corpus, list[np.ndarray]]:
    """Rows whose encoder vectors are noise and whose emotion is one word of the text."""
    corpus, features = _corpus()
    rng = np.random.default_rng(1)
    features = [rng.normal(size=f.shape).astype(np.float32) for f in features]
    gold = corpus.human_emotion.argmax(axis=1)
    corpus.texts = [f"{_WORDS[str(lang)][g]} row {i}" for i, (lang, g) in enumerate(zip(corpus.langs, gold))]
    return corpus, features


def test_the_ngram_block_reads_the_feeling_words_and_serves_what_training_fitted() -> None:
    from pipeline.lexical import bags as lexical_bags, pack

    corpus, features = _word_corpus()
    net = RedHeartNet(CFG).eval()
    record = fit_reader(net, corpus, features)
    assert record["ngrams"]["idf_rows"] == int((corpus.split == "train").sum())
    for lang in READER_LANGS:
        assert record["languages"][lang]["train_accuracy"] == 1.0 and record["languages"][lang]["ngram_buckets_read"] > 0
    i_en, i_ko = READER_LANGS.index("en"), READER_LANGS.index("ko")
    assert net.reader.ngram_weight[:, i_en].abs().max() > 0 and net.reader.ngram_weight[:, i_ko].abs().max() > 0
    # validation rows (other row numbers, the same words): right through the n-grams alone
    val = np.nonzero(corpus.split == "val")[0]
    right = predict(net, features, val, corpus)[EMOTION_KEY].argmax(axis=1) == corpus.human_emotion[val].argmax(axis=1)
    assert right.mean() > 0.95
    # serving hands the network the lexical vector and the read-out of the bags (pipeline.api);
    # training hands it the bags: the same answer
    pooled, present, modal, packed, lang = net_inputs(corpus, features, val, net.cfg.lexical)
    with torch.no_grad():
        trained = net(pooled, present, modal, packed, lang)[EMOTION_KEY]
        served_bags = pack(lexical_bags([corpus.texts[i] for i in val], CFG.lexical))
        with_vector = net._with_lexical(pooled, served_bags)
        served = net(with_vector, present, modal, lang=lang, ngram=net.reader.ngram_read(*served_bags, lang))[EMOTION_KEY]
    torch.testing.assert_close(served, trained, rtol=0, atol=0)
    # a row of no reader gets no n-gram read-out
    ja = net.reader.ngram_read(*pack(lexical_bags([corpus.texts[val[0]]], CFG.lexical)), torch.tensor([NO_READER]))
    assert ja.abs().max() == 0


def test_a_checkpoint_without_the_ngram_block_loads_and_serves_what_it_served(tmp_path) -> None:
    """Checkpoints written before the reader read n-grams have no `reader.ngram_weight` /
    `reader.ngram_idf`; they load as a zero block: the same answers, bit for bit."""
    from pipeline.lexical import bags as lexical_bags, pack
    from pipeline.weights import load_into

    net = RedHeartNet(CFG).eval()
    with torch.no_grad():
        net.reader.weight.normal_(std=0.1, generator=torch.Generator().manual_seed(1))
        net.reader.scale.fill_(1.0)
        net.reader.mix.fill_(0.5)
    old = {k: v for k, v in net.state_dict().items() if not k.startswith("reader.ngram_")}
    loaded = RedHeartNet(CFG).eval()
    with torch.no_grad():
        loaded.reader.ngram_weight.fill_(1.0)  # must be replaced by the zero block
    load_into(loaded, old, tmp_path)
    assert not loaded.reader.ngram_weight.any() and (loaded.reader.ngram_idf == 1).all()
    texts = ["what a day", "오늘 정말 기뻤다", "hola"]
    bags, lang = pack(lexical_bags(texts, CFG.lexical)), reader_indices(["en", "ko", "es"])
    pooled = _pooled(3)[: len(CFG.encoders)]
    with torch.no_grad():
        torch.testing.assert_close(loaded(pooled, lexical=bags, lang=lang)[EMOTION_KEY],
                                   net(pooled, lexical=bags, lang=lang)[EMOTION_KEY], rtol=0, atol=0)
