"""goreclaim: reproduce claims about Go memory release on Linux by experiment."""

__version__ = "0.1.0"
