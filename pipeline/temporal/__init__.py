"""Per-stream temporal state (SPEC §3): Kalman filter, stream SURD, trajectory spectra."""
