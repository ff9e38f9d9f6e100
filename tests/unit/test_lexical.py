"""The lexical encoder (pipeline.lexical): ids fixed by the text alone, bounded per record,
batch-independent vectors, and a checkpoint that says which ids its weights were learned for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import weights as ckpt
from pipeline.config import SMALL, LexicalSpec
from pipeline.errors import CheckpointError
from pipeline.lexical import LexicalEncoder, bags, ngram_ids, pack
from pipeline.model import RedHeartNet

ROOT = Path(__file__).resolve().parents[2]
BAG = LexicalSpec(1 << 12, 8, max_ids=64)


def test_ids_are_the_same_in_another_process_whatever_its_hash_seed() -> None:
    texts = ["너무 후회돼요", "If only I had told her", "발표 끝! 잘 해냈어요"]
    here = [ngram_ids(t, 1 << 17, 4096).tolist() for t in texts]
    code = ("import json, sys; from pipeline.lexical import ngram_ids; "
            "print(json.dumps([ngram_ids(t, 1 << 17, 4096).tolist() for t in json.loads(sys.argv[1])]))")
    for seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True, check=True,
                             cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed})
        assert json.loads(out.stdout) == here


def test_what_the_ids_are_made_of() -> None:
    # one word "ab": the word, the char 1-3-grams of "<ab>" (4 + 3 + 2): 10 ids; two words add a pair
    assert len(ngram_ids("ab", 1 << 20, 4096)) == 10
    assert len(ngram_ids("ab cd", 1 << 20, 4096)) == 21
    # case, compatibility forms and spacing do not change the bag
    assert ngram_ids("Ｈｅｌｌｏ  World", 1 << 20, 4096).tolist() == ngram_ids("hello world", 1 << 20, 4096).tolist()
    # a different word is a different bag
    assert ngram_ids("good", 1 << 20, 4096).tolist() != ngram_ids("bad", 1 << 20, 4096).tolist()
    assert ngram_ids("   \n", 1 << 20, 4096).size == 0


def test_cost_per_record_is_bounded() -> None:
    huge = " ".join(["supercalifragilistic"] * 50_000)
    ids = ngram_ids(huge, BAG.buckets, BAG.max_ids)
    assert ids.size == BAG.max_ids
    assert ids.min() >= 0 and ids.max() < BAG.buckets


def test_an_empty_bag_reads_zero_and_rows_do_not_depend_on_their_batch() -> None:
    torch.manual_seed(0)
    enc = LexicalEncoder(BAG).eval()
    texts = ["I regret it", "", "너무 좋아요 최고"]
    rows = bags(texts, BAG)
    together = enc(*pack(rows))
    assert torch.equal(together[1], torch.zeros(BAG.dim))
    for i, row in enumerate(rows):
        alone = enc(*pack([row]))[0]
        torch.testing.assert_close(alone, together[i])
    ids, offsets = pack(rows)
    assert offsets.tolist() == [0, len(rows[0]), len(rows[0])]
    assert ids.numel() == sum(len(r) for r in rows)


def test_the_network_refuses_to_run_without_its_lexical_input() -> None:
    net = RedHeartNet(SMALL).eval()
    frozen = [torch.zeros(2, e.dim) for e in SMALL.encoders]
    with pytest.raises(ValueError, match="lexical"):
        net(frozen)
    with torch.no_grad():
        via_bags = net(frozen, lexical=pack(bags(["good", "bad"], SMALL.lexical)))
        via_vector = net([*frozen, net.lexical(*pack(bags(["good", "bad"], SMALL.lexical)))])
    for key, value in via_bags.items():
        torch.testing.assert_close(value, via_vector[key])


def test_a_checkpoint_learned_for_other_ids_is_refused(tmp_path: Path) -> None:
    net = RedHeartNet(SMALL)
    ckpt.save_checkpoint(net, SMALL, tmp_path)
    ckpt.load_checkpoint(tmp_path, SMALL)  # loads as written
    other = replace(SMALL, lexical=replace(SMALL.lexical, max_ids=SMALL.lexical.max_ids * 2))
    with pytest.raises(CheckpointError, match="encoders"):
        ckpt.load_checkpoint(tmp_path, other)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["encoders"][-1]["scheme"] = "some/other/v0"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="encoders"):
        ckpt.load_checkpoint(tmp_path, SMALL)


def test_gradients_reach_only_the_rows_of_the_bag() -> None:
    enc = LexicalEncoder(BAG)
    ids = ngram_ids("great movie", BAG.buckets, BAG.max_ids)
    enc(*pack([ids])).sum().backward()
    touched = np.nonzero(enc.bag.weight.grad.abs().sum(dim=1).numpy())[0]
    assert set(touched.tolist()) == set(ids.tolist())
