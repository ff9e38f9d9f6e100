"""Token attributions through the whole network, on the real MiniLM and an untrained small net.

The encoders are loaded once per module (about 2 s).
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.config import PRODUCTION, SMALL
from pipeline.encoders import Encoder, build_encoders
from pipeline.explain import (
    SCORES,
    Attributions,
    attribute,
    choose_encoder,
    explain,
    explanations,
    score_targets,
    subset,
    words,
)
from pipeline.integrate import integrate
from pipeline.lexical import bags, pack
from pipeline.model import RedHeartNet
from schemas import labels as L

TEXTS = [
    "He told me unbelievable things, honestly!",
    "I regret not calling my mother before she went into hospital.",
    "The weather is fine today.",
    "They cancelled the project without asking anyone and I am furious.",
]


@pytest.fixture(scope="module")
def encoders() -> list[Encoder]:
    return build_encoders(SMALL, torch.device("cpu"), 2)


@pytest.fixture(scope="module")
def net() -> RedHeartNet:
    return RedHeartNet(SMALL).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def batch(encoders, net):
    prepared = [e.tokenize(TEXTS) for e in encoders]
    with torch.inference_mode():  # as the worker computes them: inference tensors
        pooled = [e.forward(p) for e, p in zip(encoders, prepared)]
        pooled.append(net.lexical(*pack(bags(TEXTS, SMALL.lexical))))  # the last source: the lexical vector
    return prepared, pooled


@pytest.fixture(scope="module")
def gxi(encoders, net, batch) -> Attributions:
    """grad_x_input attributions of the whole batch, shared by the tests that only read them."""
    prepared, pooled = batch
    return attribute(encoders[0], prepared[0], pooled, 0, net_forward(net))


def net_forward(net: nn.Module):
    return lambda pooled, index: net(pooled)


def rows(prepared: dict[str, torch.Tensor], pooled: list[torch.Tensor], i: int):
    """Event i alone, its padding trimmed as a batch of one would have it."""
    one = subset(prepared, [i])
    n = int(prepared["attention_mask"][i].sum())
    assert one["input_ids"].shape == (1, n) and torch.equal(one["input_ids"][0], prepared["input_ids"][i, :n])
    return one, [p[i : i + 1] for p in pooled]


def test_output_shape_keys_top_k_and_normalised_weights(encoders, net, batch) -> None:
    prepared, pooled = batch
    out = explain(encoders[0], prepared[0], pooled, 0, net_forward(net), top_k=3)
    attr = attribute(encoders[0], prepared[0], pooled, 0, net_forward(net))
    assert len(out) == len(TEXTS)
    for text, event in zip(TEXTS, out):
        assert event["encoder"] == "minilm" and event["method"] == "grad_x_input" and event["steps"] == 1
        assert event["dominant_emotion"] in L.EMOTIONS
        assert list(event["scores"]) == list(SCORES)
        text_words = set(re.findall(r"\w+|[^\w\s]", text.lower()))
        for entries in event["scores"].values():
            assert 1 <= len(entries) <= 3
            weights = [e["weight"] for e in entries]
            assert all(np.isfinite(w) for w in weights)
            assert sum(abs(w) for w in weights) <= 1.0 + 1e-9
            assert [abs(w) for w in weights] == sorted((abs(w) for w in weights), reverse=True)
            for e in entries:
                assert e["token"] in text_words, e  # whole words of the text, no [CLS]/[SEP]/[PAD]
                assert not e["token"].startswith("##")
    # with every word listed, |weights| sum to 1 per score
    full = explanations(attr, encoders[0].tokenizer, "minilm", top_k=32)
    assert [e["scores"] for e in explanations(attr, encoders[0].tokenizer, "minilm", 3)] == [e["scores"] for e in out]
    for event in full:
        for entries in event["scores"].values():
            assert sum(abs(e["weight"]) for e in entries) == pytest.approx(1.0)
    # word pieces are merged: "unbelievable" is a word even if MiniLM splits it
    tokens = {e["token"] for entries in full[0]["scores"].values() for e in entries}
    assert tokens == {"he", "told", "me", "unbelievable", "things", ",", "honestly", "!"}


def test_target_is_the_network_on_the_encoders_own_pooled_vectors(net, batch, gxi) -> None:
    """The pooled vector recomputed from the embeddings (with gradients) is the encoder's own:
    F(x) equals the scores of the plain forward, and those follow `integrate`."""
    _, pooled = batch
    attr = gxi
    with torch.inference_mode():
        out = net(pooled)
    dominant = out["emotion.emotions"].argmax(dim=1)
    torch.testing.assert_close(attr.dominant, dominant)
    torch.testing.assert_close(attr.target, score_targets(out, dominant), rtol=1e-4, atol=1e-5)
    scores = integrate({k: v.numpy() for k, v in out.items()})
    for s, name in enumerate(SCORES[1:], start=1):
        np.testing.assert_allclose(attr.target[s].numpy(), scores[name], atol=1e-5)
    np.testing.assert_allclose(attr.target[0].numpy(), out["emotion.emotions"].max(dim=1).values.numpy(), atol=1e-5)


def test_special_tokens_and_padding_get_exactly_zero(encoders, batch, gxi) -> None:
    prepared, _ = batch
    attr = gxi
    assert attr.values.shape == (len(SCORES), len(TEXTS), prepared[0]["input_ids"].shape[1])
    assert (attr.values[:, ~attr.explained] == 0).all()
    assert (attr.values[:, attr.explained] != 0).any()
    special = set(encoders[0].tokenizer.all_special_ids)
    assert not any(i in special for i in attr.input_ids[attr.explained].tolist())


def test_integrated_gradients_completeness_on_minilm(encoders, net, batch) -> None:
    """sum_t attr_t ~= F(x) - F(x'): fails if the gradient, the path or the pooling were wrong."""
    prepared, pooled = batch
    short = [0, 2]  # two short texts keep this under a few seconds
    prepared_short = subset(prepared[0], short)
    attr = attribute(
        encoders[0], prepared_short, [p[short] for p in pooled], 0, net_forward(net), method="integrated_gradients",
        steps=32, max_rows=32, with_baseline=True,  # 32 steps x 2 events in two chunks
    )
    assert attr.baseline_target is not None and attr.steps == 32
    diff = attr.target - attr.baseline_target
    error = (attr.values.sum(dim=-1) - diff).abs()
    scale = attr.values.abs().sum(dim=-1)
    assert (error <= 0.02 * scale + 1e-6).all(), (error / scale).max()


class LinearModel(nn.Module):
    """A stand-in `transformers` model whose last hidden state is its input embeddings:
    pooled = masked mean of the embeddings, linear in them."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embedding

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **_: torch.Tensor):
        return SimpleNamespace(last_hidden_state=inputs_embeds)


class LinearNet(nn.Module):
    """Every explained score linear in the pooled vectors (no softmax, no sigmoid)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.ParameterList(nn.Parameter(torch.randn(d, 18, generator=g), requires_grad=False) for d in dims)

    def forward(self, pooled: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        z = sum(p @ w for p, w in zip(pooled, self.w)) + 0.5
        return {"emotion.emotions": z[:, :7], "bentham.scores": z[:, 7:17], "regret.regret_potential": z[:, 17:]}


@pytest.mark.parametrize(("method", "steps"), [("grad_x_input", 1), ("integrated_gradients", 3)])
def test_completeness_is_exact_for_a_linear_target(encoders, batch, method, steps) -> None:
    """For F linear in the embeddings both methods must give sum_t attr_t = F(x) - F(x') exactly
    (up to float32): a wrong mask, baseline, token set or gradient would break it."""
    prepared, pooled = batch
    minilm = encoders[0]
    fake = SimpleNamespace(
        name="linear", model=LinearModel(minilm.model.get_input_embeddings()).eval(), tokenizer=minilm.tokenizer,
        device=torch.device("cpu"),
    )
    linear = LinearNet(SMALL.source_dims)
    attr = attribute(
        fake, prepared[0], pooled, 0, lambda p, i: linear(p), method=method, steps=steps, with_baseline=True
    )
    diff = attr.target - attr.baseline_target
    torch.testing.assert_close(attr.values.sum(dim=-1), diff, rtol=1e-4, atol=1e-5)
    assert diff.abs().min() > 1e-4  # the check is not vacuous


def test_an_event_alone_gets_its_in_batch_attributions(encoders, net, batch) -> None:
    prepared, pooled = batch
    together = attribute(encoders[0], prepared[0], pooled, 0, net_forward(net), method="integrated_gradients", steps=2)
    for i in (0, 2):
        one_prepared, one_pooled = rows(prepared[0], pooled, i)
        alone = attribute(
            encoders[0], one_prepared, one_pooled, 0, net_forward(net), method="integrated_gradients", steps=2
        )
        n = one_prepared["input_ids"].shape[1]
        scale = together.values[:, i].abs().max()
        torch.testing.assert_close(alone.values[:, 0], together.values[:, i, :n], rtol=0, atol=1e-4 * float(scale))
        assert (together.values[:, i, n:] == 0).all()
        assert torch.equal(alone.dominant[0], together.dominant[i])


def test_index_maps_rows_to_events_for_extra_inputs(encoders, net, batch) -> None:
    """net_forward receives, per row, the event it belongs to (to gather optional inputs)."""
    prepared, pooled = batch
    seen: list[torch.Tensor] = []

    def forward(p: list[torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(index)
        assert all(t.shape[0] == index.shape[0] for t in p)
        return net(p)

    two = [0, 2]
    attribute(
        encoders[0], subset(prepared[0], two), [p[two] for p in pooled], 0, forward,
        method="integrated_gradients", steps=3, max_rows=4,
    )
    events = torch.arange(2)
    assert torch.equal(seen[0], events)  # F(x) for the dominant emotion
    assert torch.equal(seen[1], events.repeat(2))  # the path points, step-major, 4 rows per chunk
    assert torch.equal(seen[2], events)  # the last step


def test_runs_inside_inference_mode_and_leaves_the_network_frozen(encoders, net, batch) -> None:
    prepared, pooled = batch
    with torch.inference_mode():
        out = explain(encoders[0], prepared[0], pooled, 0, net_forward(net), top_k=2)
    assert len(out) == len(TEXTS)
    assert all(p.grad is None for p in net.parameters())
    assert all(p.grad is None and not p.requires_grad for p in encoders[0].model.parameters())


def test_score_targets_match_integrate() -> None:
    g = torch.Generator().manual_seed(1)
    out = {
        "emotion.emotions": torch.softmax(torch.randn(6, 7, generator=g), dim=1),
        "bentham.scores": torch.rand(6, 10, generator=g),
        "regret.regret_potential": torch.rand(6, 1, generator=g),
        "surd.kinds": torch.softmax(torch.randn(6, 4, generator=g), dim=1),
        "calibration.certainty": torch.rand(6, 1, generator=g),
    }
    dominant = out["emotion.emotions"].argmax(dim=1)
    t = score_targets(out, dominant)
    ref = integrate({k: v.numpy() for k, v in out.items()})
    for s, name in enumerate(SCORES[1:], start=1):
        np.testing.assert_allclose(t[s].numpy(), ref[name], atol=1e-6)


class StubTokenizer:
    """Just enough of a tokenizer for `words`: pieces by id, a decoder, no '##' scheme."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.backend_tokenizer = SimpleNamespace(model=SimpleNamespace(continuing_subword_prefix=None))

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.pieces[i] for i in ids]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("Ġ", " ").replace("▁", " ")


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["<s>", "He", "Ġto", "ld", "Ġme", ",", "Ġok", "</s>", "<pad>"], ["He", "told", "me,", "ok"]),  # BPE
        (["<s>", "▁He", "▁to", "ld", "▁me", "▁ok", "</s>"], ["He", "told", "me", "ok"]),  # SentencePiece
    ],
)
def test_word_start_marker_schemes(pieces, expected) -> None:
    tok = StubTokenizer(pieces)
    keep = [not p.startswith("<") for p in pieces]
    merged = words(tok, list(range(len(pieces))), keep)
    assert [w for w, _ in merged] == expected


def test_wordpiece_merging(encoders) -> None:
    tok = encoders[0].tokenizer
    ids = tok("unbelievably chromatographic words")["input_ids"]
    keep = [i not in tok.all_special_ids for i in ids]
    assert [w for w, _ in words(tok, ids, keep)] == ["unbelievably", "chromatographic", "words"]


def test_choose_encoder() -> None:
    assert choose_encoder(SMALL.encoders, "en") == 0  # minilm
    assert choose_encoder(SMALL.encoders, "fr") == 0
    assert choose_encoder(SMALL.encoders, "ko") is None  # MiniLM cannot read Korean; e5-torch is not a transformers encoder
    names = [e.name for e in PRODUCTION.encoders]
    assert names[choose_encoder(PRODUCTION.encoders, "ko")] == "kcelectra"
    assert names[choose_encoder(PRODUCTION.encoders, "en")] == "roberta"


def test_bad_arguments(encoders, net, batch, gxi) -> None:
    prepared, pooled = batch
    assert isinstance(gxi, Attributions) and gxi.baseline_target is None
    with pytest.raises(ValueError, match="top_k"):
        explain(encoders[0], prepared[0], pooled, 0, net_forward(net), top_k=0)
    with pytest.raises(ValueError, match="method"):
        attribute(encoders[0], prepared[0], pooled, 0, net_forward(net), method="saliency")  # type: ignore[arg-type]
