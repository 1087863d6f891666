"""snn2hw: deploy trained spiking neural networks to neuromorphic hardware."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("snn2hw")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
