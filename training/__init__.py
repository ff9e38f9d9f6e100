"""Everything only training uses: `python -m training.train`, `python -m training.eval`,
the training data (`training.data`: public corpora, templates, user labels, the
human-labeled data sets, cached encodings) and the labeling functions (`training.weak`).

Serving never imports this package: `pipeline/` is what the worker loads, and a unit
test checks that importing `pipeline` and `worker.driver` leaves `training` out of
`sys.modules`. `training` imports `pipeline` (the network it trains), never the reverse.
"""
