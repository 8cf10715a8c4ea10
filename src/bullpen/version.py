"""bullpen's version, importable by any module without loading the public API."""

__version__ = "0.1.0"
