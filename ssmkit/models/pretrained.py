"""A model in a folder, in the layout Hugging Face users know: ``config.json`` (the constructor's arguments) beside
``model.safetensors`` (the weights). Such a folder is all a model needs: no dataset, no run directory, no code.

    config.json         {"architecture": "SequenceModel", "ssmkit_version": ..., "d_input": ..., "layer": ...}
    model.safetensors   the state dict (safetensors: no code in the file)

The Hugging Face Hub is optional (``pip install 'ssmkit[hub]'``): ``push_to_hub`` uploads such a folder and
``from_pretrained("owner/name")`` downloads one.

Every model class that mixes in ``Pretrained`` (and keeps its constructor's arguments in ``self.config``) gets
``save_pretrained``, ``from_pretrained`` and ``push_to_hub``, and is registered under its class name, so
``load_folder`` rebuilds whichever model a folder holds from its ``"architecture"``.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CONFIG, WEIGHTS = "config.json", "model.safetensors"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _replace_atomically(path: Path, write) -> None:
    """write(tmp) then rename over ``path``: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def config_json(architecture: str, arguments: dict) -> str:
    from .. import __version__

    try:
        return json.dumps({"architecture": architecture, "ssmkit_version": __version__, **arguments}, indent=2) + "\n"
    except TypeError as e:
        raise ValueError(f"{CONFIG}: the model's arguments must be JSON values (numbers, strings, lists, dicts): "
                         f"{e}") from None


def save_folder(model: torch.nn.Module, arguments: dict, directory) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` (built from ``arguments``) into ``directory``."""
    directory = Path(directory)
    text = config_json(type(model).__name__, arguments)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _replace_atomically(directory / WEIGHTS, lambda p: save_file(weights, p, metadata={"format": "pt"}))
    _replace_atomically(directory / CONFIG, lambda p: p.write_text(text))
    return directory


def _hub(name: str):
    try:
        import huggingface_hub
    except ImportError:
        raise ValueError(f"{name}: reaching the Hugging Face Hub needs huggingface_hub; install it with  "
                         f"pip install 'ssmkit[hub]'") from None
    return huggingface_hub


def resolve_folder(name_or_path, revision: str | None = None) -> Path:
    """The local folder of a pretrained model: a path, or a Hub id 'owner/name' downloaded (and cached) by
    huggingface_hub."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG} (expected a folder written by save_pretrained, a "
                                    f"checkpoint folder of a run, or a run directory)")
        return path
    if path.exists() or not _HUB_ID.match(str(name_or_path)):
        raise FileNotFoundError(f"{name_or_path}: not a folder with {CONFIG} and {WEIGHTS}, nor a Hub id "
                                f"'owner/name'")
    try:
        import huggingface_hub as hub
    except ImportError:  # most often a local path typed wrong: say both readings
        raise FileNotFoundError(f"{name_or_path}: no such folder here; as a Hub id 'owner/name' it needs "
                                f"huggingface_hub (pip install 'ssmkit[hub]')") from None
    return Path(hub.snapshot_download(str(name_or_path), revision=revision, allow_patterns=[CONFIG, WEIGHTS]))


def read_folder(folder: Path, architecture: str) -> tuple[dict, dict]:
    """(constructor arguments, weights) of a pretrained folder, with errors that name the file."""
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    if not isinstance(config, dict) or config.pop("architecture", None) != architecture:
        raise ValueError(f"{path}: expected a mapping with \"architecture\": \"{architecture}\"")
    config.pop("ssmkit_version", None)
    try:
        weights = load_file(folder / WEIGHTS)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{folder / WEIGHTS}: unreadable ({e})") from None
    return config, weights


def push_folder(save, repo_id: str, private: bool | None, commit_message: str) -> str:
    """save(tmp_dir) then upload tmp_dir to the Hub model repository ``repo_id`` (created if missing); its URL."""
    hub = _hub(repo_id)
    api = hub.HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save(tmp)
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def load_weights(model: torch.nn.Module, state: dict, path) -> None:
    """load_state_dict with an error that says which weights do not fit which model."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        lines = str(e).splitlines()
        raise ValueError(f"weights {path}: does not fit the model built from its config: "
                         f"{lines[1].strip() if len(lines) > 1 else e}") from None
    if missing or unexpected:
        raise ValueError(f"weights {path}: does not fit the model built from its config (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")


ARCHITECTURES: dict[str, type] = {}


def fitted_to(model: torch.nn.Module, weights: dict) -> torch.nn.Module:
    """``model``, or the same class rebuilt from its config_of_weights when ``weights`` were saved under defaults
    that have changed since (e.g. a run resumed, or a checkpoint without config.json, from an older ssmkit)."""
    if not isinstance(model, Pretrained):
        return model
    config = type(model).config_of_weights(model.config, weights)
    return model if config == model.config else type(model)(**config)


class Pretrained:
    """save_pretrained / from_pretrained / push_to_hub for an nn.Module whose ``self.config`` holds its constructor's
    arguments (JSON values)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ARCHITECTURES[cls.__name__] = cls

    def save_pretrained(self, directory) -> Path:
        """Write config.json (self.config) and model.safetensors into ``directory``; returns its path."""
        return save_folder(self, self.config, directory)

    @classmethod
    def config_of_weights(cls, config: dict, weights: dict) -> dict:
        """The constructor arguments that rebuild the model the weights were saved from: ``config`` itself, unless a
        class's defaults changed since (a class then says here how to read the older weights)."""
        return config

    @classmethod
    def from_pretrained(cls, name_or_path, *, device=None, dtype: torch.dtype | None = None,
                        revision: str | None = None):
        """The model of a folder written by save_pretrained (or a run's checkpoint folder), or of a Hub id
        'owner/name' (needs ``pip install 'ssmkit[hub]'``); in eval mode, on ``device`` in ``dtype``."""
        folder = resolve_folder(name_or_path, revision)
        config, weights = read_folder(folder, cls.__name__)
        try:
            model = cls(**cls.config_of_weights(config, weights))
        except TypeError as e:
            raise ValueError(f"{folder / CONFIG}: {e}") from None
        load_weights(model, weights, folder / WEIGHTS)
        return model.to(device=device, dtype=dtype).eval()

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, commit_message: str | None = None) -> str:
        """save_pretrained into the Hugging Face Hub model repository ``repo_id`` (created if missing); returns the
        commit's URL. Needs ``pip install 'ssmkit[hub]'`` and a login (``huggingface-cli login``)."""
        message = commit_message or f"Upload ssmkit {type(self).__name__}"
        return push_folder(self.save_pretrained, repo_id, private, message)


def load_folder(name_or_path, *, device=None, dtype: torch.dtype | None = None, revision: str | None = None):
    """Whichever registered model a pretrained folder (or Hub id) holds, by its config.json's "architecture"."""
    folder = resolve_folder(name_or_path, revision)
    try:
        architecture = json.loads((folder / CONFIG).read_text()).get("architecture")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{folder / CONFIG}: unreadable ({e})") from None
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{folder / CONFIG}: architecture: expected one of {sorted(ARCHITECTURES)}, got "
                         f"{architecture!r}")
    return ARCHITECTURES[architecture].from_pretrained(folder, device=device, dtype=dtype)
