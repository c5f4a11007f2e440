"""housing: an end-to-end MLOps system for California house values."""

__version__ = "0.1.0"
