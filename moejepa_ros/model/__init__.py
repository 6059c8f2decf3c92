"""World model (torch only): encoders, MoE predictor, heads, losses, checkpoints."""

from .checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, read_meta, save_checkpoint
from .config import LossConfig, ModelConfig, active_predictor_params, dense_equivalent
from .encoder import ConvEncoder, SimNorm, ViTEncoder, cosine_momentum, ema_update, make_encoder
from .moe import MoE, routing_aux, top_k_gates
from .predictor import FuturePredictor, Predictor
from .world_model import WorldModel

__all__ = [
    "CheckpointError",
    "ConvEncoder",
    "FORMAT_VERSION",
    "FuturePredictor",
    "LossConfig",
    "MoE",
    "ModelConfig",
    "Predictor",
    "SimNorm",
    "ViTEncoder",
    "WorldModel",
    "active_predictor_params",
    "cosine_momentum",
    "dense_equivalent",
    "ema_update",
    "load_checkpoint",
    "make_encoder",
    "read_meta",
    "routing_aux",
    "save_checkpoint",
    "top_k_gates",
]
