"""The Kafka side of Red Heart: config, consume loop, micro-batcher, checkpointing, health."""

__version__ = "0.1.0"
