"""The edgecls version: defined here only (pyproject.toml reads it; the CLI, the cards and the converters import it)."""

__version__ = "0.1.0"
