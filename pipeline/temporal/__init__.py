"""Per-stream temporal state (docs/PIPELINE.md, "Temporal state"): Kalman filter, stream SURD, trajectory spectra."""
