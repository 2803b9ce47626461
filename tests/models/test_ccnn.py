"""CCNN: one network for sequences and images, its blocks as the paper's, and its errors."""
import pytest
import torch

from conftest import rel_err
import ssmkit
from ssmkit.data import build
from ssmkit.models import CCNN
from ssmkit.train import make_config
from ssmkit.train.build import build_model


@pytest.mark.parametrize("dim, shape", [(1, (3, 64, 1)), (2, (3, 8, 8, 1))])
def test_the_same_network_reads_sequences_and_images(dim, shape):
    model = CCNN(1, 10, d_model=16, n_layers=2, dim=dim, l_max=64, hidden=8)
    assert model(torch.randn(shape)).shape == (3, 10)
    assert model.convs[0].kernel.causal == (dim == 1)


def test_a_block_is_prenorm_conv_gelu_dropout_linear_gelu_plus_shortcut():
    model = CCNN(2, 3, d_model=8, n_layers=1, l_max=16, hidden=8, dropout=0.0).double().eval()
    x = torch.randn(2, 16, 2, dtype=torch.float64)
    gelu = torch.nn.functional.gelu
    h = gelu(model.encoder_norm(model.encoder(x)[0]))
    h = h + gelu(model.linears[0](gelu(model.convs[0](model.norms[0](h))[0])))
    expected = model.decoder(model.final_norm(h).mean(1))
    assert rel_err(model(x), expected) < 1e-12


def test_dropout_zeroes_whole_channels():
    model = CCNN(1, 2, d_model=64, n_layers=1, l_max=16, dropout=0.5).train()
    h = torch.ones(4, 16, 64)
    dropped = model.dropout(h)
    assert set(dropped.unique().tolist()) == {0.0, 2.0}
    assert (dropped == dropped[:, :1]).all()  # one draw per (sample, channel), the same at every position


def test_rate_reaches_every_kernel():
    model = CCNN(1, 2, d_model=8, n_layers=2, l_max=32, hidden=8).eval()
    x = torch.randn(2, 63, 1)
    calls = []
    for conv in [model.encoder, *model.convs]:
        conv.kernel.register_forward_hook(lambda m, args, out: calls.append(args[0]))
    model(x, rate=0.5)
    assert calls == [0.5, 0.5, 0.5]


def test_the_digits_image_option_keeps_the_pixels():
    sequence, image = build("digits", None, "val").tensors[0], build("digits", None, "val", image=True).tensors[0]
    assert image.shape == (180, 8, 8, 1) and torch.equal(image.reshape(180, 64, 1), sequence)


def test_bad_arguments_are_named():
    model = CCNN(1, 2, d_model=8, n_layers=1, dim=2, hidden=8)
    with pytest.raises(ValueError, match=r"x: expected channels-last input \(B, 2 spatial sizes, d_input=1\)"):
        model(torch.randn(2, 64, 1))
    with pytest.raises(ValueError, match="lengths: CCNN takes whole inputs"):
        model(torch.randn(2, 8, 8, 1), torch.tensor([8, 8]))
    with pytest.raises(ValueError, match="n_layers: expected a positive number of blocks"):
        CCNN(1, 2, n_layers=0, l_max=8)


def test_a_saved_ccnn_loads_from_its_folder(tmp_path):
    model = CCNN(1, 3, d_model=8, n_layers=1, dim=2, hidden=8).eval()
    x = torch.randn(2, 8, 8, 1)
    loaded = ssmkit.load(model.save_pretrained(tmp_path / "ccnn"))
    assert isinstance(loaded, CCNN) and torch.equal(loaded(x), model(x))


def test_the_trainer_builds_ccnn_from_a_dataset_and_refuses_layer_options():
    dataset = build("digits", None, "val", image=True)
    model = build_model(make_config(["model=ccnn", "d_model=8", "n_layers=1", "model_options.hidden=8"]), dataset)
    assert isinstance(model, CCNN) and model.dim == 2
    with pytest.raises(ValueError, match="layer_options: model=ccnn builds its own CKConv layers"):
        build_model(make_config(["model=ccnn", "layer_options.init=lin"]), dataset)
    with pytest.raises(ValueError, match="model_options: .*ccnn takes kernel_size, hidden, omega_0"):
        build_model(make_config(["model=ccnn", "model_options.width=3"]), dataset)


def test_weight_penalty_is_the_official_l2_term_and_trains(tmp_path):
    """Σ‖p‖₂ outside the kernel networks plus Σ‖K‖₂ of the sampled kernels (ckconv/nn/loss.py LnLoss, unsquared)."""
    model = CCNN(1, 2, d_model=8, n_layers=1, l_max=16, hidden=8).double().train()
    model(torch.randn(2, 16, 1, dtype=torch.float64))
    convs = [model.encoder, *model.convs]
    expected = sum(p.norm() for n, p in model.named_parameters() if ".net." not in n)
    expected = expected + sum(c.sampled_kernel.norm() for c in convs)
    assert torch.allclose(model.weight_penalty(), expected)
    assert any(".kernel.net." in n for n, _ in model.named_parameters())  # the MAGNets are left out
    model.eval()(torch.randn(2, 16, 1, dtype=torch.float64))
    assert all(c.sampled_kernel is None for c in convs)  # evaluation keeps no graph
    from ssmkit.train import make_config, train
    with pytest.raises(ValueError, match="weight_penalty: only model=ccnn takes it"):
        make_config(["weight_penalty=0.001"])
    results = train(make_config(["model=ccnn", "dataset=digits", "d_model=8", "n_layers=1", "epochs=1",
                                 "batch_size=16", "train_subset=32", "eval_subset=16", "weight_penalty=0.001",
                                 "model_options.hidden=8", f"out_dir={tmp_path}"]), log=lambda *_: None)
    assert results["test_acc"] >= 0
