"""The model a training config asks for, over the dataset it will read: SequenceModel (and its per-step and two-tower
forms), SaShiMi, SSSD, the image models (S4ND, a conv baseline), ViS4mer or CCNN, each with its options checked
against the model's signature in one line."""
from __future__ import annotations

import inspect

from ..layers import LAYERS, S4ND
from ..models import CCNN, SSSD, ImageModel, Sashimi, SequenceModel, ViS4mer
from ..models.image import ConvND
from ..options import check_options
from .config import TrainConfig


def build_model(config: TrainConfig, dataset) -> SequenceModel | Sashimi | SSSD | ImageModel | ViS4mer | CCNN:
    """The model for ``dataset``: token embedding when it has a vocabulary, per-step outputs for task 'lm', a
    two-tower head for pair datasets; SSSD (n_layers residual blocks of width d_model) for task 'impute'; ImageModel
    for image datasets (model s4nd or cnn, see _image_model).

    d_state, ssm_lr and the dataset's l_max go to the layer when its signature takes them (SGConv has no d_state;
    SaShiMi's levels run at several lengths: its model_options.l_max gives each level its own); layer_options were
    checked against the
    layer's signature by TrainConfig, and model_options are checked against the model's.
    """
    if config.model in ("s4nd", "cnn") or (isinstance(dataset.l_max, tuple) and config.model != "ccnn"):
        return _image_model(config, dataset)
    accepted = inspect.signature(LAYERS[config.layer]).parameters
    shared = {"d_state": config.d_state, "ssm_lr": config.ssm_lr}
    if config.model not in ("sashimi", "vis4mer"):  # they give each level or stage its own length
        shared["l_max"] = dataset.l_max
    options = {**{k: v for k, v in shared.items() if k in accepted}, **config.layer_options}
    per_step = getattr(dataset, "task", "classify") == "lm"
    if config.trim_padding and per_step:
        raise ValueError(f"trim_padding: cuts the inputs of a padded batch to its longest sequence, which a "
                         f"per-position (lm) dataset's targets would not follow; dataset {config.dataset!r} is one")
    if config.model == "sashimi":
        if not per_step:
            raise ValueError(f"model: sashimi predicts at every position; dataset {config.dataset!r} is not a "
                             f"per-position (lm) task")
        _check_model_options("sashimi", Sashimi, config, "pool, expand, unet, l_max, norm, pool_weight_norm",
                             positional=2)
        model = Sashimi(dataset.d_input, dataset.n_classes, vocab_size=getattr(dataset, "vocab_size", None),
                        d_model=config.d_model, n_layers=config.n_layers, ff=config.ffn_mult, layer=config.layer,
                        layer_options=options, dropout=config.dropout, **config.model_options)
    elif config.model in ("vis4mer", "ccnn"):
        return _vis4mer(config, dataset, options) if config.model == "vis4mer" else _ccnn(config, dataset)
    elif (config.model == "sssd") != (getattr(dataset, "task", "classify") == "impute"):
        raise ValueError(f"model: sssd is for imputation datasets and imputation needs sssd; got model={config.model!r}"
                         f" with dataset {config.dataset!r}")
    elif config.model == "sssd":
        _check_model_options("sssd", SSSD, config, "d_skip, d_embed_in, d_embed, T, beta_0, beta_T", positional=1)
        return SSSD(dataset.d_input, n_blocks=config.n_layers, d_model=config.d_model, layer=config.layer,
                    layer_options=options, dropout=config.dropout, **config.model_options)
    else:
        if config.model_options:
            raise ValueError(f"model_options: the sequence model takes none (its keys are top-level), got "
                             f"{sorted(config.model_options)}")
        model = SequenceModel(dataset.d_input, dataset.n_classes, layer=config.layer, d_model=config.d_model,
                              n_layers=config.n_layers, layer_options=options, prenorm=config.prenorm,
                              norm=config.norm, dropout=config.dropout, pool="none" if per_step else config.pool,
                              vocab_size=getattr(dataset, "vocab_size", None), ffn_mult=config.ffn_mult,
                              attention_every=config.attention_every, attention_heads=config.attention_heads,
                              pair=getattr(dataset, "pair", False), padding_idx=getattr(dataset, "padding_idx", None),
                              head=config.head, encoder_init=config.encoder_init,
                              embedding_dropout=config.embedding_dropout, tie_dropout=config.tie_dropout,
                              final_norm=config.final_norm, bn_momentum=config.bn_momentum,
                              head_init=config.head_init, mask_padding=config.mask_padding,
                              longest_norms=config.mask_padding == "layers" and not config.trim_padding)
    if per_step:
        _check_causal(model)
    return model


def _image_model(config: TrainConfig, dataset) -> ImageModel:
    """ImageModel for an image dataset (l_max one length per axis): S4ND blocks (model_options: S4ND's options, d_state
    and ssm_lr from the config, l_max from the dataset) or 3x3-conv blocks (model_options: kernel_size)."""
    if config.model not in ("s4nd", "cnn"):
        raise ValueError(f"model: dataset {config.dataset!r} gives images (l_max {dataset.l_max}); they need "
                         f"model=s4nd, cnn or ccnn, got model={config.model!r}")
    if not isinstance(dataset.l_max, tuple):
        raise ValueError(f"model: {config.model} reads images; dataset {config.dataset!r} gives sequences (set "
                         f"dataset_options.image=true where the dataset has it)")
    for key, value, default in (("pool", config.pool, "mean"),
                                ("ffn_mult", config.ffn_mult, 0), ("attention_every", config.attention_every, 0),
                                ("layer_options", config.layer_options, {})):
        if value != default:
            raise ValueError(f"{key}: the image models take {default!r} (their layer's options are model_options), "
                             f"got {value!r}")
    for key in ("d_model", "dim"):
        if key in config.model_options:
            raise ValueError(f"model_options.{key}: not an option here; the trainer sets it (d_model: the config "
                             f"key; dim: the dataset's axes)")
    if config.model == "cnn":
        options = check_options(ConvND, config.model_options, "model_options")
    else:
        shared = {"d_state": config.d_state, "ssm_lr": config.ssm_lr, "l_max": list(dataset.l_max)}
        options = {**shared, **check_options(S4ND, config.model_options, "model_options")}
    return ImageModel(dataset.d_input, dataset.n_classes, layer="conv" if config.model == "cnn" else "s4nd",
                      d_model=config.d_model, n_layers=config.n_layers, dim=len(dataset.l_max),
                      layer_options=options, prenorm=config.prenorm, dropout=config.dropout, norm=config.norm,
                      tie_dropout=config.tie_dropout)


def _classifier(name: str, cls: type, config: TrainConfig, dataset, takes: str) -> None:
    """A classification dataset, and model_options that ``cls`` takes (with the names it takes in the error)."""
    if getattr(dataset, "task", "classify") != "classify" or getattr(dataset, "pair", False):
        raise ValueError(f"model: {name} classifies whole inputs; dataset {config.dataset!r} is not a single-input "
                         f"classification task")
    _check_model_options(name, cls, config, takes, positional=2)


def _check_model_options(name: str, cls: type, config: TrainConfig, takes: str, positional: int) -> None:
    """model_options that ``cls`` takes beside its ``positional`` leading arguments, or one line naming the ones
    it takes (those the trainer sets from the config's own keys are refused too: they would be given twice)."""
    try:
        inspect.signature(cls).bind(*range(positional), **config.model_options)
    except TypeError as e:
        raise ValueError(f"model_options: {e}; {name} takes {takes}") from None


def _vis4mer(config: TrainConfig, dataset, options: dict) -> ViS4mer:
    """ViS4mer: n_layers stages from width d_model, the dataset's l_max halved per stage; model_options multiscale."""
    _classifier("vis4mer", ViS4mer, config, dataset, "multiscale")
    options = {k: v for k, v in options.items() if k != "l_max"}  # ViS4mer gives each stage its own
    return ViS4mer(dataset.d_input, dataset.n_classes, d_model=config.d_model, n_layers=config.n_layers,
                   l_max=dataset.l_max, layer=config.layer, layer_options=options, dropout=config.dropout,
                   prenorm=config.prenorm, **config.model_options)


def _ccnn(config: TrainConfig, dataset) -> CCNN:
    """CCNN: n_layers blocks of width d_model over the dataset's sequences or images (dim from a sample's rank);
    its convolutions are its own, so layer_options do not apply; model_options: the kernel's."""
    _classifier("ccnn", CCNN, config, dataset, "kernel_size, hidden, omega_0, mask_width, threshold")
    if config.layer_options:
        raise ValueError(f"layer_options: model=ccnn builds its own CKConv layers; set their options in "
                         f"model_options, got {sorted(config.layer_options)}")
    dim = dataset[0][0].dim() - 1
    return CCNN(dataset.d_input, dataset.n_classes, d_model=config.d_model, n_layers=config.n_layers, dim=dim,
                l_max=dataset.l_max if dim == 1 else None, dropout=config.dropout, **config.model_options)


def _check_causal(model: SequenceModel | Sashimi) -> None:
    """A language model predicts each token from the ones before: a layer that reads ahead would see the answer."""
    for i, block in enumerate(model.layers):
        if getattr(block, "bidirectional", False) or not getattr(block, "causal", True):
            option = "bidirectional=true" if getattr(block, "bidirectional", False) else "causal=false"
            raise ValueError(f"layer_options: {option} makes block {i} ({type(block).__name__}) read future tokens, "
                             f"which a language-model task predicts; drop the option")
