"""Modality tokens in the backbone: masking makes a result independent of what other
events of the batch carry, and an event without text reads no made-up text vector."""

from __future__ import annotations

import torch

from pipeline.config import SMALL
from pipeline.model import RedHeartNet
from pipeline.modality_tokens import modality_widths


def _net() -> RedHeartNet:
    return RedHeartNet(SMALL).eval().requires_grad_(False)


def _pooled(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, dim, generator=g) for dim in SMALL.source_dims]


def _features(name: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, modality_widths(SMALL.image.dim)[name], generator=g)


def test_text_rows_do_not_depend_on_other_rows_modalities() -> None:
    net = _net()
    pooled = _pooled(4)
    alone = net([p[:2] for p in pooled])
    text_present = torch.tensor([True, True, True, False])
    mixed = net(
        pooled,
        text_present,
        {
            "audio": (_features("audio", 4, 1), torch.tensor([False, False, True, False])),
            "image": (_features("image", 4, 2), torch.tensor([False, False, False, True])),
        },
    )
    for key, value in alone.items():
        torch.testing.assert_close(mixed[key][:2], value, atol=1e-5, rtol=1e-5)


def test_a_row_without_text_ignores_its_encoder_rows() -> None:
    net = _net()
    image = (_features("image", 2, 3), torch.tensor([True, True]))
    no_text = torch.tensor([False, False])
    zeros = [torch.zeros(2, dim) for dim in SMALL.source_dims]
    junk = [torch.full((2, dim), 1e3) for dim in SMALL.source_dims]
    a = net(zeros, no_text, {"image": image})
    b = net(junk, no_text, {"image": image})
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_a_present_modality_changes_the_answer_and_each_subset_runs() -> None:
    net = _net()
    pooled = _pooled(1)
    base = net(pooled)
    names = ("image", "audio", "biosignals")
    for mask in range(1, 8):
        chosen = {n: (_features(n, 1, i), torch.tensor([True])) for i, n in enumerate(names) if mask >> i & 1}
        for text in (True, False):
            out = net(pooled, torch.tensor([text]), chosen)
            assert all(torch.isfinite(v).all() for v in out.values())
            if text:
                assert not torch.allclose(out["emotion.emotions"], base["emotion.emotions"])


def test_modality_parameters_are_counted() -> None:
    counts = _net().parameter_counts()
    assert counts["modalities"] > 0
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
