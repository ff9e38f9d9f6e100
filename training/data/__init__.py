"""Training data: public corpora, template corpora, user labels, human-labeled data sets
(`training.data.human`, see docs/DATA.md), cached encodings."""
