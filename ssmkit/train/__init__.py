"""Training: config, optimizer parameter groups (the S4 recipe), the loop, checkpoints."""
from .config import TrainConfig, experiment_names, load_experiment, make_config
from .model_graphs import ModelGraphs
from .optim import adamw, param_groups
from .trainer import evaluate_run, load_model, train

__all__ = ["TrainConfig", "make_config", "load_experiment", "experiment_names", "param_groups", "adamw", "train",
           "load_model", "evaluate_run", "ModelGraphs"]
