"""2x super-resolution: a compact residual CNN on top of the decoder (model + losses only)."""
from nar.sr.model import SRModelConfig, SRNet

__all__ = ["SRModelConfig", "SRNet"]
