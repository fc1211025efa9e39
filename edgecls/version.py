"""The edgecls version, defined here only: pyproject.toml reads it; the CLI and the converters import this
leaf module (importing it loads neither the CLI nor the runtime)."""

__version__ = "0.1.0"
