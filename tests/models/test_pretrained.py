"""A model in a folder (config.json + model.safetensors): saved, loaded, pushed and pulled without the dataset."""
import importlib.util
import json
import shutil
import subprocess
import sys
import types

import pytest
import torch

import ssmkit
from ssmkit.models import SSSD, Sashimi, SequenceModel
from ssmkit.train import make_config, train


def test_save_pretrained_then_from_pretrained_gives_the_same_model(tmp_path):
    model = SequenceModel(16, 3, layer="s4", d_model=8, n_layers=2, vocab_size=16, pair=True, ffn_mult=2,
                          layer_options={"d_state": 8, "l_max": 32, "bidirectional": True}).eval()
    folder = model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "SequenceModel" and config["layer_options"]["l_max"] == 32
    again = SequenceModel.from_pretrained(folder)
    assert not again.training and again.config == model.config
    x = torch.randint(0, 16, (2, 2, 32))
    assert torch.equal(again(x), model(x))
    assert torch.equal(ssmkit.load(folder)(x), model(x))


def test_a_mega_lra_model_with_every_new_option_round_trips(tmp_path):
    """The official-recipe keys (Mega's postnorm ScaleNorm and truncation, the MLP head, Mega's embedding, tied and
    embedding dropout, no final norm, BatchNorm momentum) live in config.json: the folder alone rebuilds the model.
    A folder saved before these keys existed loads with their defaults."""
    model = SequenceModel(16, 3, layer="mega", d_model=8, n_layers=2, vocab_size=16, padding_idx=0, pair=True,
                          prenorm=False, norm="scale", head="mlp", encoder_init="mega", embedding_dropout=0.1,
                          tie_dropout=True, final_norm=False, bn_momentum=0.05,
                          layer_options={"ndim": 4, "causal": False, "chunk_size": 8, "truncation": 6}).eval()
    folder = model.save_pretrained(tmp_path / "m")
    again = ssmkit.load(folder)
    x = torch.randint(1, 16, (2, 2, 16))
    assert again.config == model.config and torch.equal(again(x), model(x))
    old = SequenceModel(3, 2, d_model=8, n_layers=1)
    folder = old.save_pretrained(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    for key in ("head", "encoder_init", "embedding_dropout", "tie_dropout", "final_norm", "bn_momentum"):
        del config[key]
    (folder / "config.json").write_text(json.dumps(config))
    u = torch.randn(2, 5, 3)
    assert torch.equal(ssmkit.load(folder)(u), old.eval()(u))


def test_sashimi_and_sssd_are_saved_and_loaded_by_their_architecture(tmp_path):
    sashimi = Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, pool=[2, 2], layer="s4d").eval()
    sssd = SSSD(3, n_blocks=2, d_model=8, d_skip=8, d_embed_in=8, d_embed=16, layer="s4d").eval()
    tokens = torch.randint(0, 256, (2, 16))
    x, mask, t = torch.randn(2, 16, 3), torch.ones(2, 16, 3), torch.tensor([3, 7])
    for model in (sashimi, sssd):
        folder = model.save_pretrained(tmp_path / type(model).__name__)
        again = ssmkit.load(folder)
        assert type(again) is type(model) and again.config == model.config
    assert torch.equal(ssmkit.load(tmp_path / "Sashimi")(tokens), sashimi(tokens))
    assert torch.equal(ssmkit.load(tmp_path / "SSSD").denoise(x, x, mask, t), sssd.denoise(x, x, mask, t))
    with pytest.raises(ValueError, match="architecture: expected one of"):
        json_path = tmp_path / "SSSD" / "config.json"
        json_path.write_text(json_path.read_text().replace('"SSSD"', '"Nope"'))
        ssmkit.load(tmp_path / "SSSD")


def test_pretrained_folders_with_bad_contents_get_errors_naming_the_file(tmp_path):
    SequenceModel(1, 2, d_model=8, n_layers=1).save_pretrained(tmp_path / "m")
    config = tmp_path / "m" / "config.json"
    with pytest.raises(FileNotFoundError, match="no config.json"):
        SequenceModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="nor a Hub id"):
        ssmkit.load(tmp_path / "missing" / "deeper")
    config.write_text(config.read_text().replace('"pool"', '"pooling"'))
    with pytest.raises(ValueError, match="config.json: .*pooling"):
        SequenceModel.from_pretrained(tmp_path / "m")
    config.write_text("{not json")
    with pytest.raises(ValueError, match="config.json: unreadable"):
        SequenceModel.from_pretrained(tmp_path / "m")


def test_a_run_loads_generates_and_plots_after_its_data_folder_is_gone(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    train(make_config(["dataset=text", f"data_dir={texts}", "dataset_options.seq_len=32", "d_model=16",
                       "n_layers=1", "d_state=8", "epochs=1", "batch_size=8", "warmup_epochs=0",
                       f"out_dir={tmp_path}", "run_name=lm"]), log=lambda *_: None)
    shutil.rmtree(texts)
    run = tmp_path / "lm"
    model = ssmkit.load(run)
    assert model.config["vocab_size"] == 256 and model.config["pool"] == "none"
    assert isinstance(SequenceModel.from_pretrained(run / "checkpoints" / "epoch-0001"), SequenceModel)
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(run), "--prompt", "the ", "--length", "8"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "tokens/s" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(run), "--prompt", "the ", "--length", "40",
                          "--batch", "3", "--eos", "o", "--seed", "0", "--out", str(tmp_path / "eos")],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "3 samples written to" in out.stdout, out.stderr
    for sample in sorted((tmp_path / "eos").glob("sample_*.txt")):  # each ends at its first "o", if it wrote one
        new = sample.read_text()[len("the "):]
        assert "o" not in new[:-1], new
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(run), "--top-p", "2"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "error: --top-p: expected a probability in (0, 1], got 2.0" in out.stderr
    model.save_pretrained(tmp_path / "folder")  # a model folder carries no run config: generate takes it as text
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "folder"), "--length", "8"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "tokens/s" in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(run), "--sample-rate", "16000"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().endswith("is not audio (dataset text); got 16000"), out.stderr
    if importlib.util.find_spec("matplotlib"):  # the figures need it; loading the model does not
        out = subprocess.run([sys.executable, "-m", "ssmkit", "plot", str(run)], capture_output=True, text=True)
        assert out.returncode == 0 and "kernels.png" in out.stdout, out.stderr


class _FakeHub:
    """huggingface_hub's two entry points that ssmkit uses, over a local folder standing in for the Hub."""

    def __init__(self, root):
        self.root = root

    def module(self):
        hub = types.ModuleType("huggingface_hub")
        root = self.root

        class HfApi:
            def create_repo(self, repo_id, private=None, exist_ok=False):
                (root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

            def upload_folder(self, repo_id, folder_path, commit_message):
                shutil.copytree(folder_path, root / repo_id, dirs_exist_ok=True)
                return types.SimpleNamespace(commit_url=f"https://hub/{repo_id}/commit/1")

        def snapshot_download(repo_id, revision=None, allow_patterns=None):
            return str(root / repo_id)

        hub.HfApi, hub.snapshot_download = HfApi, snapshot_download
        return hub


def test_push_to_hub_and_from_pretrained_by_hub_id(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", _FakeHub(tmp_path / "hub").module())
    model = SequenceModel(1, 2, d_model=8, n_layers=1).eval()
    assert model.push_to_hub("me/tiny") == "https://hub/me/tiny/commit/1"
    pulled = SequenceModel.from_pretrained("me/tiny")
    x = torch.randn(2, 5, 1)
    assert torch.equal(pulled(x), model(x)) and torch.equal(ssmkit.load("me/tiny")(x), model(x))


def test_the_hub_without_huggingface_hub_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    # a name that is no folder here reads as a Hub id; the error says both, since it is most often a mistyped path
    with pytest.raises(FileNotFoundError, match=r"me/tiny: no such folder here; as a Hub id .*\(pip install "
                                                r"'ssmkit\[hub\]'\)"):
        SequenceModel.from_pretrained("me/tiny")
    with pytest.raises(ValueError, match=r"pip install 'ssmkit\[hub\]'"):
        SequenceModel(1, 2).push_to_hub("me/tiny")


def test_generate_asks_for_the_sample_rate_of_a_sashimi_model_folder(tmp_path):
    """A model folder does not say what its tokens are; a SaShiMi folder is audio, not bytes to print."""
    from ssmkit.models import Sashimi

    Sashimi(1, 256, vocab_size=256, d_model=8, n_layers=1, pool=[2], layer_options={"d_state": 4}).save_pretrained(
        tmp_path / "audio")
    out = subprocess.run([sys.executable, "-m", "ssmkit", "generate", str(tmp_path / "audio"), "--length", "4",
                          "--out", str(tmp_path / "wavs")], capture_output=True, text=True)
    assert out.returncode == 2 and "--sample-rate:" in out.stderr and "holds a SaShiMi model" in out.stderr, out.stderr
    assert not (tmp_path / "wavs").exists()
