"""MC dropout: one batched forward, dropout only, reproducible, modes restored, named stds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.backbone import SelfAttention
from pipeline.config import SMALL
from pipeline.integrate import integrate
from pipeline.model import OUTPUT_LABELS, RedHeartNet
from pipeline.uncertainty import (
    INTEGRATED_STD,
    dropout_active,
    integrated_samples,
    mc_dropout,
    rows_forward,
    score_std,
    take_rows,
)
from schemas import labels as L

B = 5


@pytest.fixture(scope="module")
def net() -> RedHeartNet:
    return RedHeartNet(SMALL).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def pooled() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(B, dim, generator=g) for dim in SMALL.source_dims]


def eval_outputs(net: nn.Module, pooled: list[torch.Tensor]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        return {k: v.numpy() for k, v in net(pooled).items()}


def test_shapes_and_named_std(net, pooled) -> None:
    mc = mc_dropout(net, rows_forward(net, pooled), B, 8, seed=1)
    assert mc.passes == 8 and len(mc) == B
    assert set(mc.mean) == set(OUTPUT_LABELS) == set(mc.std)
    for key, labels in OUTPUT_LABELS.items():
        assert mc.mean[key].shape == (B, len(labels)) == mc.std[key].shape
    assert mc.samples["emotion.emotions"].shape == (B, 8, len(L.EMOTIONS))
    report = score_std(mc)
    assert len(report) == B
    for r in report:
        assert r["passes"] == 8
        assert list(r["emotion"]) == list(L.EMOTIONS)
        assert list(r["bentham"]) == list(L.BENTHAM_SCORES)
        assert list(r["regret"]) == ["regret_potential"]
        assert list(r["integrated"]) == list(INTEGRATED_STD)
        values = [*r["emotion"].values(), *r["bentham"].values(), *r["regret"].values(), *r["integrated"].values()]
        assert all(isinstance(v, float) and np.isfinite(v) and v > 0 for v in values)


def test_std_is_zero_without_dropout(pooled) -> None:
    """Every dropout at p = 0: all passes are the same computation. CPU kernels are not
    bitwise invariant to a row's position in a batch (even in eval mode), so the spread is
    float32 rounding, ~1e-8: five orders of magnitude below the p = 0.1 spread."""
    net0 = RedHeartNet(dataclasses.replace(SMALL, dropout=0.0)).eval()
    mc = mc_dropout(net0, rows_forward(net0, pooled), B, 8)
    assert max(float(v.max()) for v in mc.std.values()) < 1e-6
    for r in score_std(mc):
        assert max(r["integrated"].values()) < 1e-6 and max(r["emotion"].values()) < 1e-6
    ref = eval_outputs(net0, pooled)
    for k in ref:
        np.testing.assert_allclose(mc.mean[k], ref[k], rtol=1e-5, atol=1e-6)


def test_mean_over_many_passes_approaches_the_eval_output(net, pooled) -> None:
    ref = eval_outputs(net, pooled)
    mc = mc_dropout(net, rows_forward(net, pooled), B, 256, seed=3)
    for key in ("emotion.emotions", "bentham.scores", "regret.regret_potential"):
        # not exact: E[f(dropout(x))] != f(x) for a nonlinear f, but close for p = 0.1
        np.testing.assert_allclose(mc.mean[key], ref[key], atol=0.03)
        # and the mean is within a few standard errors of eval far more often than not
        z = np.abs(mc.mean[key] - ref[key]) / (mc.std[key] / np.sqrt(256))
        assert np.median(z) < 5


def test_integrated_std_is_computed_per_pass(net, pooled) -> None:
    mc = mc_dropout(net, rows_forward(net, pooled), B, 16, seed=5)
    per_pass = integrated_samples(mc)
    for i in range(B):
        for j in range(16):
            one = {k: v[i, j][None] for k, v in mc.samples.items()}
            got = integrate(one)
            for k in INTEGRATED_STD:
                assert per_pass[k][i, j] == pytest.approx(float(got[k][0]), abs=1e-7)
    report = score_std(mc)
    sentiment = per_pass["overall_sentiment"]
    for i in range(B):
        expected = float(np.std(sentiment[i], ddof=1))
        assert report[i]["integrated"]["overall_sentiment"] == pytest.approx(expected, rel=1e-4)
    # samples agree with the per-key statistics
    np.testing.assert_allclose(mc.samples["emotion.emotions"].mean(axis=1), mc.mean["emotion.emotions"], atol=1e-6)
    np.testing.assert_allclose(mc.samples["bentham.scores"].std(axis=1, ddof=1), mc.std["bentham.scores"], atol=1e-6)


def test_same_seed_same_batch_is_reproducible_and_seed_matters(net, pooled) -> None:
    a = mc_dropout(net, rows_forward(net, pooled), B, 8, seed=7)
    b = mc_dropout(net, rows_forward(net, pooled), B, 8, seed=7)
    c = mc_dropout(net, rows_forward(net, pooled), B, 8, seed=8)
    for k in a.std:
        np.testing.assert_array_equal(a.std[k], b.std[k])
        np.testing.assert_array_equal(a.mean[k], b.mean[k])
    assert not np.array_equal(a.std["emotion.emotions"], c.std["emotion.emotions"])


def test_callers_rng_is_untouched(net, pooled) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mc_dropout(net, rows_forward(net, pooled), B, 4, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_only_dropout_modules_are_switched_and_modes_are_restored(net) -> None:
    flags = {name: m.training for name, m in net.named_modules()}
    seen: dict[str, bool] = {}
    with dropout_active(net):
        for name, m in net.named_modules():
            seen[name] = m.training
    for name, m in net.named_modules():
        expected = isinstance(m, (nn.Dropout, SelfAttention))
        assert seen[name] == expected, name
    assert {name: m.training for name, m in net.named_modules()} == flags
    assert any(isinstance(m, SelfAttention) for m in net.modules())


def test_modes_are_restored_after_an_exception_and_from_train_mode(pooled) -> None:
    net = RedHeartNet(SMALL).train()
    net.task_heads.eval()  # a mixed state must come back exactly
    flags = {name: m.training for name, m in net.named_modules()}

    def failing(index: torch.Tensor) -> dict[str, torch.Tensor]:
        net(take_rows(pooled, index))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        mc_dropout(net, failing, B, 4)
    assert {name: m.training for name, m in net.named_modules()} == flags
    mc_dropout(net, rows_forward(net, pooled), B, 4)
    assert {name: m.training for name, m in net.named_modules()} == flags


def test_rows_are_repeated_event_major_including_optional_inputs(pooled) -> None:
    seen = {}

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def forward(self, pooled: list[torch.Tensor], extra: torch.Tensor | None = None, missing=None):
            seen.update(pooled=pooled, extra=extra, missing=missing)
            x = self.drop(pooled[0][:, :7])
            return {
                "emotion.emotions": x,
                "bentham.scores": x[:, :1].expand(-1, 10),
                "regret.regret_potential": x[:, :1],
                "surd.kinds": x[:, :4],
                "calibration.certainty": x[:, :1],
            }

    probe = Probe()
    extra = torch.arange(B, dtype=torch.float32)
    mc_dropout(probe, rows_forward(probe, pooled, extra=extra, missing=None), B, 3)
    assert torch.equal(seen["extra"], extra.repeat_interleave(3))
    assert seen["missing"] is None
    assert torch.equal(seen["pooled"][1], pooled[1].repeat_interleave(3, dim=0))


def test_one_pass_is_refused(net, pooled) -> None:
    with pytest.raises(ValueError, match="2 passes"):
        mc_dropout(net, rows_forward(net, pooled), B, 1)


def test_with_the_nets_optional_inputs(net, pooled) -> None:
    """`text_present` and `modalities` (a dict of tuples) are repeated with the rows: each
    event's MC mean stays close to its own eval output."""
    from pipeline.modality_tokens import modality_widths

    g = torch.Generator().manual_seed(4)
    width = modality_widths(SMALL.image.dim)["audio"]
    present = torch.tensor([True, False, True, True, False])
    modalities = {"audio": (torch.randn(B, width, generator=g), present)}
    text_present = torch.tensor([True, True, False, True, True])
    with torch.inference_mode():
        ref = net(pooled, text_present, modalities)
    mc = mc_dropout(net, rows_forward(net, pooled, text_present, modalities=modalities), B, 64, seed=2)
    np.testing.assert_allclose(mc.mean["emotion.emotions"], ref["emotion.emotions"].numpy(), atol=0.03)
    assert (mc.std["emotion.emotions"] > 0).all()
