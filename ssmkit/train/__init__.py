"""Training: config, optimizer parameter groups (the S4 recipe), the loop, checkpoints."""
from .config import TrainConfig, make_config
from .optim import param_groups
from .trainer import evaluate_run, load_model, train

__all__ = ["TrainConfig", "make_config", "param_groups", "train", "load_model", "evaluate_run"]
