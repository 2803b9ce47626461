"""Training: optimizer parameter groups (the S4 recipe) and, later, the trainer loop."""
from .optim import param_groups

__all__ = ["param_groups"]
