"""socratic: distil step-by-step reasoning from a large teacher LM into small students (Socratic CoT).

    socratic --help

See docs/ARCHITECTURE.md for how the package mirrors the pipeline.
"""

from socratic.core.version import __version__

__all__ = ["__version__"]
