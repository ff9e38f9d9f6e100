"""Feature extractors for the non-text parts of an event: voice audio and biosignals (EEG, ECG, GSR)."""
