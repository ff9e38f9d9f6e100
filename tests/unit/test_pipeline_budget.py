"""Parameter budget of the own modules (`PRODUCTION_BUDGET`, docs/PIPELINE.md), measured on the `meta` device (no weights, no download)."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import PRODUCTION_BUDGET, PRODUCTION_ENCODER_BUDGET, get_profile
from pipeline.encoders import build_meta_encoder
from pipeline.model import RedHeartNet


@pytest.fixture(scope="module")
def production_counts() -> dict[str, int]:
    with torch.device("meta"):
        net = RedHeartNet(get_profile("production"))
    assert next(net.parameters()).device.type == "meta"
    return net.parameter_counts()


@pytest.mark.parametrize("module", sorted(PRODUCTION_BUDGET))
def test_production_module_within_ten_percent_of_budget(production_counts, module):
    budget = PRODUCTION_BUDGET[module]
    assert abs(production_counts[module] - budget) <= 0.10 * budget, (module, production_counts[module], budget)


def test_production_own_modules_total_about_330m(production_counts):
    assert abs(production_counts["total"] - 330_000_000) <= 33_000_000


def test_production_encoders_built_from_kept_configs_total_about_345m():
    counts = {}
    for spec in get_profile("production").encoders:
        model = build_meta_encoder(spec)
        assert next(model.parameters()).device.type == "meta"
        assert model.config.hidden_size == spec.dim == 768
        counts[spec.name] = sum(p.numel() for p in model.parameters())
    assert counts["roberta"] == pytest.approx(124.6e6, rel=0.01)
    assert counts["klue-bert"] == pytest.approx(110.6e6, rel=0.01)
    total = sum(counts.values())
    assert abs(total - PRODUCTION_ENCODER_BUDGET) <= 0.10 * PRODUCTION_ENCODER_BUDGET, counts


def test_small_profile_is_small():
    net = RedHeartNet(get_profile("small"))
    counts = net.parameter_counts()
    # the network proper, and the lexical encoder's hashed-n-gram table beside it
    assert counts["total"] - counts["lexical"] < 5_000_000
    assert counts["lexical"] == (1 << 17) * 32
    # what ships in the repository: float32 weights under ~25 MB
    assert counts["total"] * 4 < 25_000_000


def test_initialization_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = RedHeartNet(get_profile("small")), RedHeartNet(get_profile("small"))
    assert torch.equal(torch.random.get_rng_state(), before)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_unknown_profile_and_encoder_names_are_errors():
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("medium")
    with pytest.raises(ValueError, match="unknown encoders"):
        get_profile("small").with_encoder_paths({"bert": "/x"})
