"""ViS4mer: the stages halve width and length, the isotropic form is SequenceModel, spans are summed as the official
evaluation does, and the digit-video task defeats order-invariant pooling by construction."""
import json

import pytest
import torch
from torch import nn

from conftest import rel_err
import ssmkit
from ssmkit.data import build
from ssmkit.data.digit_video import patch_tokens
from ssmkit.models import SequenceModel, ViS4mer, span_scores
from ssmkit.models.vis4mer import OLDER_S4_LAYOUT
from ssmkit.train import make_config
from ssmkit.train.build import build_model


def test_each_stage_halves_the_width_and_the_length():
    model = ViS4mer(12, 3, d_model=64, n_layers=3, l_max=40, dropout=0.0).eval()
    seen = []
    for module in [*model.layers, model.decoder]:
        module.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    assert model(torch.randn(2, 40, 12)).shape == (2, 3)
    assert seen == [(2, 40, 64), (2, 20, 32), (2, 10, 16), (2, 8)]  # the decoder reads the mean of (2, 5, 8)
    assert model.widths == [64, 32, 16, 8] and [layer.l_max for layer in model.layers] == [40, 20, 10]


def test_the_defaults_are_the_papers_decoder():
    model = ViS4mer(1024, 10)
    assert model.widths == [1024, 512, 256, 128] and isinstance(model.encoder, nn.Identity)
    s4 = model.layers[0]
    assert isinstance(s4, ssmkit.S4) and s4.kernel.N2 == 32 and isinstance(s4.output, nn.Linear)
    assert not s4.bidirectional and isinstance(s4.activation, nn.GELU) and s4.dropout.p == 0.2


@pytest.mark.parametrize("prenorm", [True, False])
def test_without_pooling_it_is_sequence_model(prenorm):
    """multiscale=False: the same submodules as SequenceModel; equal outputs, less SequenceModel's final LayerNorm
    under prenorm (postnorm has none)."""
    vis = ViS4mer(5, 4, d_model=16, n_layers=2, multiscale=False, dropout=0.0, prenorm=prenorm,
                  layer_options={"d_state": 8}).double().eval()
    seq = SequenceModel(5, 4, layer="s4", d_model=16, n_layers=2, prenorm=prenorm, norm="layer", pool="mean",
                        layer_options={"d_state": 8, "init": "legs", "output": "linear", "share_lambda": True,
                                       "tie_pq": False, "real_transform": "none"}).double().eval()
    missing, unexpected = seq.load_state_dict(vis.state_dict(), strict=False)
    assert unexpected == [] and all(k.startswith("final_norm") for k in missing) and (missing != []) == prenorm
    seq.final_norm = nn.Identity()
    x = torch.randn(3, 24, 5, dtype=torch.float64)
    assert rel_err(vis(x), seq(x)) < 1e-12


def test_span_scores_sum_the_softmax_of_every_span():
    model = ViS4mer(4, 3, d_model=16, n_layers=2, dropout=0.0).double().eval()
    x = torch.randn(2, 30, 4, dtype=torch.float64)
    got = span_scores(model, x, span=12, stride=6, spans_per_batch=2)
    expected = sum(model(x[:, s:s + 12]).softmax(-1) for s in (0, 6, 12, 18))
    assert rel_err(got, expected) < 1e-12


def test_a_video_shorter_than_a_span_is_zero_padded():
    model = ViS4mer(4, 3, d_model=16, n_layers=2, dropout=0.0).double().eval()
    x = torch.randn(1, 9, 4, dtype=torch.float64)
    padded = torch.cat([x, torch.zeros(1, 3, 4, dtype=torch.float64)], 1)
    assert rel_err(span_scores(model, x, span=12, stride=4), model(padded).softmax(-1)) < 1e-12


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="d_model: 3 stages halve the width 3 times, so it must be a multiple of 8"):
        ViS4mer(4, 2, d_model=20)
    model = ViS4mer(4, 2, d_model=16, n_layers=3)
    with pytest.raises(ValueError, match="T must be at least 8; got T=5"):
        model(torch.randn(1, 5, 4))
    with pytest.raises(ValueError, match=r"x: expected per-token features \(B, T, d_input=4\)"):
        model(torch.randn(1, 16, 3))
    with pytest.raises(ValueError, match="lengths: ViS4mer reads whole spans"):
        model(torch.randn(1, 16, 4), torch.tensor([16]))
    with pytest.raises(ValueError, match="stride: expected a positive integer"):
        span_scores(model, torch.randn(1, 16, 4), span=8, stride=0)


def test_patch_tokens_cut_frames_in_raster_order():
    image = torch.arange(64.0).view(8, 8)
    tokens = patch_tokens(image, 4)
    assert tokens.shape == (4, 16)
    assert tokens[1].tolist() == [4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31]
    assert torch.equal(patch_tokens(image, 8)[0], image.flatten())


def test_digit_videos_label_the_first_and_last_frame():
    """The label is 1 exactly when the first and last frames show the same digit, and the two classes are
    balanced; the frames in between are drawn whatever the label."""
    ds = build("digits-video", None, "val", frames=6, patch=8)
    x, y = ds.tensors
    images, labels = build("digits", None, "val").tensors
    digit = {tuple(img.flatten().tolist()): int(c) for img, c in zip(images, labels)}
    first = torch.tensor([digit[tuple(v[0].tolist())] for v in x])
    last = torch.tensor([digit[tuple(v[-1].tolist())] for v in x])
    assert torch.equal(y, (first == last).long())
    assert x.shape == (500, 6, 64) and ds.l_max == 6 and 0.45 < y.float().mean() < 0.55
    assert all(not torch.equal(v[0], v[-1]) for v in x)  # a same-digit video shows two different images


def test_a_saved_vis4mer_loads_from_its_folder(tmp_path):
    model = ViS4mer(4, 3, d_model=16, n_layers=2, l_max=32).eval()
    x = torch.randn(2, 32, 4)
    loaded = ssmkit.load(model.save_pretrained(tmp_path / "vis4mer"))
    assert isinstance(loaded, ViS4mer) and torch.equal(loaded(x), model(x))


def test_the_trainer_gives_each_stage_its_length_and_refuses_other_tasks():
    video = build("digits-video", None, "val", frames=4)
    model = build_model(make_config(["model=vis4mer", "layer=s4", "d_model=16", "n_layers=2"]), video)
    assert [layer.l_max for layer in model.layers] == [16, 8]
    with pytest.raises(ValueError, match="model: vis4mer classifies whole inputs"):
        build_model(make_config(["model=vis4mer", "layer=s4", "dataset=digits-pairs"]), build("digits-pairs", None,
                                                                                              "val"))
    with pytest.raises(ValueError, match="layer_options: l_max is ViS4mer's own argument"):
        ViS4mer(4, 2, d_model=16, layer_options={"l_max": 8})


def test_vis4mer_s4_starts_from_the_exact_hippo_b_as_its_official_s4():
    model = ViS4mer(6, 2, d_model=8, n_layers=2, l_max=16, layer_options={"d_state": 16})
    for layer in model.layers:  # widths 8, 4
        assert torch.equal(layer.kernel.B, ssmkit.S4(layer.H, d_state=16, B_clip=None).kernel.B)


@pytest.mark.parametrize("named", [{}, {"real_transform": "softplus"}])
def test_weights_saved_with_the_older_s4_layout_still_load(tmp_path, named):
    """A ViS4mer saved before its S4 took one Λ and a separate Q (per-channel Λ, no Q, Re λ = −exp(raw)) loads as it
    was trained, with whatever options its config named; a new one's config names its layout."""
    old = ViS4mer(4, 3, d_model=16, n_layers=2, layer_options={**OLDER_S4_LAYOUT, **named}).eval()
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["layer_options"] = dict(named)  # as written before the layout options existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = ViS4mer.from_pretrained(tmp_path)
    x = torch.randn(2, 8, 4)
    assert torch.equal(loaded(x), old(x))
    new = ViS4mer(4, 3, d_model=16, n_layers=2)
    assert new.layers[0].kernel.A_real.shape[0] == 1 and hasattr(new.layers[0].kernel, "Q")


def test_the_s4_layout_goes_to_s4_layers_only():
    model = ViS4mer(4, 3, d_model=16, n_layers=2, layer="s4d")
    assert model.layers[0].kernel.real_transform == "exp"


def test_a_run_saved_with_the_older_s4_layout_resumes_and_loads(tmp_path):
    """A training run written before the layout options (its config.yaml names none, its checkpoint has no Q)
    resumes and loads as the model it trained (pretrained.fitted_to)."""
    import yaml
    from ssmkit.train import load_model, train
    older = "{" + ", ".join(f"{k}: {str(v).lower()}" for k, v in OLDER_S4_LAYOUT.items()) + "}"
    train(make_config(["model=vis4mer", "layer=s4", "d_model=16", "n_layers=2", "d_state=4", "batch_size=32", "epochs=1",
                       "warmup_epochs=0", "train_subset=64", "eval_subset=40", f"out_dir={tmp_path}", "run_name=r",
                       f"layer_options={older}"]), log=lambda *_: None)
    path = tmp_path / "r" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["layer_options"], config["epochs"] = {}, 2  # as written then, and one epoch more to go
    path.write_text(yaml.safe_dump(config))
    for folder in (tmp_path / "r" / "checkpoints").glob("epoch-*"):  # from before config.json was saved too
        (folder / "config.json").unlink(missing_ok=True)
    results = train(resume=tmp_path / "r", log=lambda *_: None)
    assert results["run_dir"] == str(tmp_path / "r")
    assert load_model(tmp_path / "r").layers[0].kernel.A_real.shape[0] == 16
