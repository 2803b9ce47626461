"""The training configuration: one dataclass with every default in one place, overridden by ``key=value`` strings.

An experiment is a YAML mapping of the same keys (a file shipped in ssmkit/experiments/, named without .yaml, or a
path); it replaces the defaults it names, and key=value strings come last. Values are parsed as YAML scalars
(``lr=3e-3``, ``prenorm=false``, ``data_dir=null``) and checked against the field's type; dict fields take dotted keys
(``layer_options.init=lin``), checked against the layer's or the dataset's signature. Unknown keys and wrong types
are errors that name the key, what it accepts and the nearest real key, raised before any data is read.
"""
from __future__ import annotations

import dataclasses
import math
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import yaml

from ..data import DATASETS
from ..layers import LAYERS
from ..layers.norms import NORMS
from ..models.backbone import check_mask_padding
from ..models.heads import ENCODER_INITS, HEAD_INITS, HEADS
from ..options import accepted_names, check_options, check_type, did_you_mean, load_yaml


@dataclass
class TrainConfig:
    # data
    dataset: str = "digits"
    data_dir: str | None = None
    dataset_options: dict = field(default_factory=dict)
    train_subset: int = 0  # train on a fixed seeded subset of this many samples (0: all); CPU-sized runs
    eval_subset: int = 0  # the same for validation and test
    # model: `sequence` (SequenceModel: n_layers residual `layer` blocks), `sashimi` (Sashimi: model_options pool,
    # expand, unet; n_layers, ffn_mult as its ff, dropout and the layer keys apply) or `sssd` (SSSD for imputation
    # datasets: n_layers blocks of width d_model; model_options d_skip, T, beta_0, beta_T, ...), `vis4mer` (ViS4mer:
    # n_layers stages from width d_model; model_options multiscale; prenorm, dropout and the layer keys apply),
    # `ccnn` (CCNN: n_layers blocks of width d_model, dropout; model_options kernel_size, hidden, omega_0, mask_width,
    # threshold), or `s4nd` / `cnn` (ImageModel over image datasets, e.g. dataset_options.image=true: n_layers S4ND or
    # 3x3-conv blocks; model_options are S4ND's options, or kernel_size; prenorm, norm, dropout apply); prenorm, norm,
    # pool and the attention keys are SequenceModel's. d_state and ssm_lr go to every layer, layer_options too.
    model: str = "sequence"
    model_options: dict = field(default_factory=dict)
    layer: str = "s4d"
    d_model: int = 64
    n_layers: int = 4
    d_state: int = 64
    layer_options: dict = field(default_factory=dict)
    prenorm: bool = True
    norm: str = "layer"
    dropout: float = 0.1
    pool: str = "mean"
    ffn_mult: int = 0
    attention_every: int = 0
    attention_heads: int = 4
    head: str = "linear"  # linear, mlp (the official Mega LRA classifier), s5 (its Retrieval decoder): models/heads.py
    encoder_init: str = "torch"  # torch, mega (the official Mega LRA embedding) or lecun (S5's; models/heads.py)
    head_init: str = "torch"  # torch, or lecun: the official S5 decoder's flax Dense init (models/heads.py)
    embedding_dropout: float = 0.0
    tie_dropout: bool = False  # one dropout mask per sample and channel for all positions (the official S4 configs)
    final_norm: bool = True  # the norm after the last block (prenorm only); S5's model has none
    bn_momentum: float = 0.1  # BatchNorm's running-average weight (torch's convention; flax's 0.95 is 0.05 here)
    mask_padding: bool | str = True  # false: blocks and norms read a batch's padding, as the official DSS and S5 LRA
    # models; 'layers': only the layers mask it, the norms read it, as the official S4 LRA backbone
    trim_padding: bool = False  # cut each padded batch to its longest sequence, as the official DSS loaders
    # optimization: AdamW (betas adam_betas); the SSM parameters get ssm_lr and no weight decay, nor do biases, norm
    # gains and embeddings unless weight_decay_all (the official S4 trainer's grouping). batch_size is the
    # global batch of one optimizer step (over all processes), taken in `accumulate` sequential micro-batches. schedule
    # after the linear warmup: cosine to 0, linear to 0, constant, plateau (times plateau_factor once more than
    # plateau_patience epochs in a row bring no better validation score, as torch's ReduceLROnPlateau), or multistep
    # (times gamma after each of the milestones epochs, as torch's MultiStepLR)
    epochs: int = 20
    max_minutes: float = 0.0  # also stop after the first epoch that ends past this much training time (0: no limit)
    batch_size: int = 64
    drop_last: bool | str = False  # every split's last partial batch dropped, training and evaluation (the official
    # S4 repository's loaders, configs/loader/default.yaml: its published scores are over the whole batches only);
    # 'train': the training batches' only (the official S5 loaders)
    lr: float = 0.01
    ssm_lr: float = 0.001
    weight_decay: float = 0.05
    weight_decay_all: bool = False  # also biases, norm gains and embeddings (fairseq's Mega, S5); train/optim.py
    weight_decay_heads: bool = False  # the encoder's and decoder's too (the official S4 trainer); train/optim.py
    weight_penalty: float = 0.0  # model=ccnn: λ·Σ‖p‖₂ added to the loss, the official CCNN's weight decay
    schedule: str = "cosine"  # cosine, linear, constant, plateau, multistep, s5_cosine, cosine_warmup (Schedule)
    schedule_steps: int | None = None  # the decay's end in optimizer steps (an official num_training_steps) instead of
    # epochs × steps per epoch
    warmup_epochs: int = 1
    warmup_steps: int | None = None  # the warmup in optimizer steps instead of warmup_epochs (fairseq's updates)
    warmup_power: int = 1  # warmup (k/warmup)^power: 1 linear, 2 quadratic (Mega's Path-X); not for s5_cosine
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    plateau_mode: str = "auto"  # auto: the task's direction (accuracy up, losses down); min or max as torch's mode
    plateau_every: int = 1  # the plateau reads the validation score every this many epochs
    milestones: list = field(default_factory=list)  # multistep: the epochs after which the lr is multiplied by gamma
    gamma: float = 0.1
    grad_clip: float = 0.0
    adam_betas: list = field(default_factory=lambda: [0.9, 0.999])
    accumulate: int = 1
    # fp32; bf16 autocast; fp16 autocast with loss scaling (GPUs without bf16). compile: torch.compile the model.
    # model_graph: on a GPU, the model's forward and backward replayed from CUDA graphs per batch shape
    # (train/model_graphs.py; one process, not with compile)
    precision: str = "fp32"
    compile: bool = False
    model_graph: bool = False
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    # output
    out_dir: str = "runs"
    run_name: str | None = None

    @property
    def drops_train_tail(self) -> bool:
        """Whether an epoch leaves out its last partial batch (drop_last true or 'train')."""
        return self.drop_last in (True, "train")

    @property
    def drops_eval_tail(self) -> bool:
        """Whether the validation and test scores leave out a split's last partial batch (drop_last true)."""
        return self.drop_last is True

    @property
    def trims_op_by_op(self) -> bool:
        """Whether a padded batch is cut to its longest sequence where the model runs op by op (evaluation, and
        training without model_graph's graphs: CPU, DDP): with trim_padding, and with mask_padding 'layers'
        (lra-listops, lra-text), whose batches kept at one length for the graphs give the trimmed batch's outputs
        (longest_norms; in evaluation BatchNorm reads its running statistics), so that the padding beyond the longest
        sequence is work only."""
        return self.trim_padding or self.mask_padding == "layers"

    @property
    def blocks(self) -> str:
        """What the blocks are, for run names and logs: the layer, the image model (s4nd, cnn), or CCNN's ckconv."""
        return {"s4nd": "s4nd", "cnn": "cnn", "ccnn": "ckconv"}.get(self.model, self.layer)

    def __post_init__(self):
        choices = {"schedule": ("cosine", "linear", "constant", "plateau", "multistep", "s5_cosine", "cosine_warmup"),
                   "precision": ("fp32", "bf16", "fp16"), "norm": NORMS, "pool": ("mean", "last"), "head": HEADS,
                   "encoder_init": ENCODER_INITS, "head_init": HEAD_INITS, "plateau_mode": ("auto", "min", "max"),
                   "model": ("sequence", "sashimi", "sssd", "vis4mer", "ccnn", "s4nd", "cnn")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key}: expected one of {allowed}, got {getattr(self, key)!r}"
                                 f"{did_you_mean(getattr(self, key), allowed)}")
        for key, default, models in (("head", "linear", ("sequence",)), ("encoder_init", "torch", ("sequence",)),
                                     ("head_init", "torch", ("sequence",)), ("embedding_dropout", 0.0, ("sequence",)),
                                     ("tie_dropout", False, ("sequence", "s4nd", "cnn")),
                                     ("final_norm", True, ("sequence",)), ("bn_momentum", 0.1, ("sequence",)),
                                     ("mask_padding", True, ("sequence",)), ("trim_padding", False, ("sequence",)),
                                     ("weight_decay_heads", False, ("sequence", "s4nd", "sashimi")),
                                     ("weight_penalty", 0.0, ("ccnn",)),
                                     ("norm", "layer", ("sequence", "s4nd", "cnn"))):
            if getattr(self, key) != default and self.model not in models:
                raise ValueError(f"{key}: only model={' or '.join(models)} takes it (model={self.model!r}), got "
                                 f"{getattr(self, key)!r}")
        check_mask_padding(self.mask_padding)
        if not (isinstance(self.drop_last, bool) or self.drop_last == "train"):
            raise ValueError(f"drop_last: expected true, false or 'train', got {self.drop_last!r}")
        for entry in dataclasses.fields(self):  # TrainConfig(...) from Python too: "no" is not false
            if entry.type in ("bool", bool) and not isinstance(getattr(self, entry.name), bool):
                raise ValueError(f"{entry.name}: expected true or false, got {getattr(self, entry.name)!r}")
        self.layer_options, self.dataset_options = _checked_options(self)
        if self.model_graph and self.compile:
            raise ValueError("model_graph: not together with compile (torch.compile traces the model its own way); "
                             "got model_graph=true, compile=true: add model_graph=false to compile")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: expected a count >= 0, got {self.num_workers}")
        if self.train_subset < 0 or self.eval_subset < 0:
            raise ValueError(f"train_subset, eval_subset: expected counts >= 0 (0: all), got {self.train_subset}, "
                             f"{self.eval_subset}")
        for key in ("d_model", "n_layers", "d_state", "epochs", "batch_size", "accumulate", "plateau_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: expected a positive integer, got {getattr(self, key)}")
        if self.plateau_patience < 0:
            raise ValueError(f"plateau_patience: expected epochs >= 0 without improvement that are tolerated, got "
                             f"{self.plateau_patience}")
        if self.batch_size % self.accumulate:
            raise ValueError(f"accumulate: must divide batch_size={self.batch_size} (micro-batches of equal size), "
                             f"got {self.accumulate}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"plateau_factor: expected a factor in (0, 1), got {self.plateau_factor}")
        for key in ("lr", "ssm_lr", "weight_decay", "weight_penalty", "dropout", "grad_clip", "plateau_factor", "gamma",
                    "max_minutes"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key}: expected a finite number, got {getattr(self, key)}")
        if self.max_minutes < 0:
            raise ValueError(f"max_minutes: expected >= 0 (0: no limit), got {self.max_minutes}")
        if self.lr <= 0 or self.ssm_lr < 0:
            raise ValueError(f"lr, ssm_lr: expected lr > 0 and ssm_lr >= 0, got {self.lr}, {self.ssm_lr}")
        for key in ("weight_decay", "weight_penalty", "grad_clip", "warmup_epochs", "attention_every", "ffn_mult"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: expected a number >= 0 (0: off), got {getattr(self, key)}")
        if self.warmup_steps is not None and (not isinstance(self.warmup_steps, int)
                                              or isinstance(self.warmup_steps, bool) or self.warmup_steps < 0):
            raise ValueError(f"warmup_steps: expected None (warmup_epochs) or an integer >= 0, got "
                             f"{self.warmup_steps!r}")
        if self.schedule_steps is not None and (not isinstance(self.schedule_steps, int)
                                                or isinstance(self.schedule_steps, bool) or self.schedule_steps < 1):
            raise ValueError(f"schedule_steps: expected None (epochs × steps per epoch) or an integer >= 1, got "
                             f"{self.schedule_steps!r}")
        if not isinstance(self.warmup_power, int) or isinstance(self.warmup_power, bool) or self.warmup_power < 1:
            raise ValueError(f"warmup_power: expected an integer >= 1 (1: linear), got {self.warmup_power!r}")
        if (not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in self.milestones)
                or list(self.milestones) != sorted(set(self.milestones))):
            raise ValueError(f"milestones: expected increasing positive epochs, e.g. [100, 200], got "
                             f"{self.milestones!r}")
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("milestones: schedule=multistep needs the epochs at which the lr drops, e.g. [100, 200]")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma: expected a factor in (0, 1], got {self.gamma}")
        if not 0 < self.bn_momentum <= 1:
            raise ValueError(f"bn_momentum: expected a weight in (0, 1] (torch's convention), got {self.bn_momentum}")
        for key in ("dropout", "embedding_dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"{key}: expected a probability in [0, 1), got {getattr(self, key)}")
        betas = self.adam_betas
        if (len(betas) != 2 or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1
                                       for b in betas)):
            raise ValueError(f"adam_betas: expected two numbers in [0, 1), e.g. [0.9, 0.98], got {betas!r}")
        self.adam_betas = [float(b) for b in betas]
        if self.attention_heads < 1:
            raise ValueError(f"attention_heads: expected a positive integer, got {self.attention_heads}")
        name = self.run_name
        if name is not None and (not PurePath(name).parts or PurePath(name).is_absolute() or PurePath(name).anchor
                                 or ".." in PurePath(name).parts):
            raise ValueError(f"run_name: expected a folder name inside out_dir (a relative path, no '..'), got "
                             f"{name!r}")


_HINTS = typing.get_type_hints(TrainConfig)
TRAINER_SETS = {"layer_options.d_model": "set it with the config key d_model",
                "dataset_options.data_dir": "set it with the config key data_dir",
                "dataset_options.split": "the trainer builds every split"}


def _checked_options(config: TrainConfig) -> tuple[dict, dict]:
    """(layer_options, dataset_options) checked against the layer's and the dataset builder's signatures (names,
    with the nearest one for a typo, and value types), so that a bad option fails before any data is read."""
    checked = []
    for key, registry in (("layer", LAYERS), ("dataset", DATASETS)):
        name, options = getattr(config, key), getattr(config, f"{key}_options")
        if name not in registry:
            raise ValueError(f"{key}: unknown name {name!r}{did_you_mean(name, registry)}; registered: "
                             f"{sorted(registry)}")
        for key_option in (f"{key}_options.{option}" for option in options):
            if key_option in TRAINER_SETS:
                raise ValueError(f"{key_option}: not an option here; {TRAINER_SETS[key_option]}")
        checked.append(check_options(registry[name], options, f"{key}_options"))
    return checked[0], checked[1]


def _set(out: dict, key: str, value, source: str) -> None:
    """out[key] = value for a (possibly dotted) key, checking the key and the value's type."""
    top, _, sub = key.partition(".")
    if top not in _HINTS:
        raise ValueError(f"{source}: unknown config key {top!r}{did_you_mean(top, _HINTS)}; keys: {sorted(_HINTS)}")
    if sub:
        if _HINTS[top] is not dict:
            raise ValueError(f"{source}: {key}: {top!r} is not a dict field, so it takes no '.{sub}'")
        out[top] = {**out[top], sub: value}
    else:
        out[top] = check_type(key, value, _HINTS[top])


def parse_assignments(items: list[str], what: str = "override") -> list[tuple[str, object]]:
    """(key, value) of each key=value string, the value parsed as a YAML scalar (an empty value is ""; 3e-3 is a
    float, see options.load_yaml)."""
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} {item!r}: expected key=value")
        try:
            pairs.append((key, load_yaml(text) if text else ""))
        except yaml.YAMLError as e:
            raise ValueError(f"{what} {item!r}: the value is not a YAML scalar ({getattr(e, 'problem', e)}); quote "
                             f"it for the shell and for YAML: '{key}=\"{text}\"'") from None
    return pairs


def make_config(overrides: list[str], base: dict | None = None, source: str = "config") -> TrainConfig:
    """TrainConfig from the defaults, updated by ``base`` (e.g. an experiment's YAML), then by key=value strings.

    An override of ``layer`` (without a whole ``layer_options=`` override) keeps those of the base's layer_options
    that the new layer takes and drops the rest with a warning: they were written for the base's layer (``train
    layer=gss`` on an experiment whose S4D sets ``init``)."""
    out = dataclasses.asdict(TrainConfig())
    for key, value in (base or {}).items():
        _set(out, key, value, source)
    base_layer = out["layer"]
    assignments = parse_assignments(overrides)
    for key, value in assignments:
        _set(out, key, value, "override")
    if out["layer"] != base_layer and not any(key == "layer_options" for key, _ in assignments):
        own = {key.partition(".")[2] for key, _ in assignments if key.startswith("layer_options.")}
        out["layer_options"] = _options_for(out["layer"], out["layer_options"], own, f"{source}'s {base_layer}")
    return TrainConfig(**out)


def _options_for(layer: str, options: dict, own: set, origin: str) -> dict:
    """The options that ``layer`` takes or that the overrides set (``own``: checked later, as any), warning of the
    rest; all of them for an unknown layer (its own error comes later)."""
    takes = accepted_names(LAYERS[layer]) if layer in LAYERS else None
    if takes is None or not options:
        return options
    names = set(takes) | own
    dropped = sorted(k for k in options if k not in names)
    if dropped:
        warnings.warn(f"layer={layer}: layer_options {dropped} of {origin} dropped ({layer} does not take them; set "
                      f"layer_options to choose its own)", stacklevel=3)
    return {k: v for k, v in options.items() if k in names}


EXPERIMENTS_DIR = Path(__file__).resolve().parents[1] / "experiments"


def experiment_names() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def load_experiment(name_or_path: str) -> dict:
    """The mapping of a shipped experiment (by name) or of a YAML file (by path)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = EXPERIMENTS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            if name_or_path in {f.name for f in dataclasses.fields(TrainConfig)}:
                raise ValueError(f"experiment: {name_or_path!r} is a config key, not an experiment; set it as "
                                 f"{name_or_path}=VALUE")
            raise ValueError(f"experiment: {name_or_path!r} is neither a file nor a shipped experiment"
                             f"{did_you_mean(name_or_path, experiment_names())}; shipped: {experiment_names()}")
    mapping = read_yaml(path)
    if not mapping:
        raise ValueError(f"{path}: the experiment sets no config keys (an empty file would train the defaults)")
    return mapping


def read_yaml(path: Path) -> dict:
    """The mapping of config keys in a YAML file ({} when empty); malformed YAML or another type is an error naming
    the file and the line."""
    try:
        mapping = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (expected UTF-8 YAML)") from None
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {type(mapping).__name__}")
    return mapping
