"""benchbox: which hardware and serving configuration meets a latency target at the lowest cost."""

__version__ = "0.1.0"
