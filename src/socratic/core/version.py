"""The package version, in the lowest layer so that every layer may record it (manifests, --version)."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's version
