"""Training data: public corpora, template corpora, user labels, cached encodings."""
