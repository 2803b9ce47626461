"""Padding: with lengths, the outputs at the real positions are those of the unpadded sequences, whatever the padding
holds — through every non-causal layer (which would otherwise read it) and through the backbone."""
import inspect

import pytest
import torch

from conftest import rel_err
import ssmkit
from ssmkit.models import SequenceModel

L, LENGTHS = 12, [7, 12]

NON_CAUSAL = {
    "s4": lambda: ssmkit.S4(4, 8, bidirectional=True),
    "s4d": lambda: ssmkit.S4D(4, 8, bidirectional=True),
    "dss": lambda: ssmkit.DSS(4, 8, bidirectional=True, variant="softmax", l_max=L),
    "dlr": lambda: ssmkit.DLR(4, 8, bidirectional=True),
    "s5": lambda: ssmkit.S5(4, 8, bidirectional=True),
    "sgconv": lambda: ssmkit.SGConv(4, L, kernel_dim=4, bidirectional=True),
    "ema": lambda: ssmkit.EMA(4, 4, bidirectional=True),
    "mega": lambda: ssmkit.Mega(4, 4, causal=False, l_max=L, attention="softmax"),
    "mega-chunk": lambda: ssmkit.Mega(4, 4, causal=False, chunk_size=4, attention="laplace"),
    "attention": lambda: ssmkit.MultiHeadAttention(4, 2, causal=False),
}


def _padded_and_alone(layer, H=4):
    """(layer over the padded batch at the real positions, layer over each sequence alone) for padding of noise."""
    u = torch.randn(len(LENGTHS), L, H, dtype=torch.float64)
    y, _ = layer(u, lengths=torch.tensor(LENGTHS))
    got = torch.cat([y[b, :n] for b, n in enumerate(LENGTHS)])
    alone = torch.cat([layer(u[b:b + 1, :n])[0][0] for b, n in enumerate(LENGTHS)])
    return got, alone


@pytest.mark.parametrize("name", NON_CAUSAL)
def test_non_causal_layers_read_no_padding(name):
    got, alone = _padded_and_alone(NON_CAUSAL[name]().double().eval())
    assert rel_err(got, alone) < 1e-12


def test_every_registered_layer_takes_lengths():
    for name, cls in ssmkit.LAYERS.items():
        assert "lengths" in inspect.signature(cls.forward).parameters, name


def test_a_chunk_of_padding_alone_stays_finite_in_mega_chunk():
    layer = ssmkit.Mega(4, 4, causal=False, chunk_size=4).double()
    y, _ = layer(torch.randn(2, L, 4, dtype=torch.float64), lengths=torch.tensor([3, 12]))  # chunks 1, 2 all padding
    assert torch.isfinite(y).all()


def test_lengths_are_checked():
    layer = ssmkit.S4D(4, 8)
    u = torch.randn(2, L, 4)
    for lengths, match in [(torch.tensor([3]), r"shape \(B=2,\)"), (torch.tensor([0, 3]), r"in \[1, L=12\]"),
                           (torch.tensor([3.0, 4.0]), "integer"), (torch.tensor([3, 13]), "from 3 to 13")]:
        with pytest.raises(ValueError, match=match):
            layer(u, lengths=lengths)
    with pytest.raises(ValueError, match="without state"):
        layer(u, layer.default_state(2), lengths=torch.tensor([3, 4]))


def _model(**options):
    return SequenceModel(16, 3, d_model=8, n_layers=2, vocab_size=16, padding_idx=0, **options).double()


@pytest.mark.parametrize("pool", ["mean", "last"])
@pytest.mark.parametrize("norm,prenorm,training", [("layer", True, False), ("batch", True, True),
                                                   ("batch", False, True), ("batch", False, False)])
def test_a_padded_batch_gives_the_outputs_of_its_sequences(pool, norm, prenorm, training):
    """Bidirectional S4D blocks with an FFN; BatchNorm in training takes its statistics over real positions only."""
    model = _model(layer_options={"d_state": 8, "bidirectional": True}, ffn_mult=2, pool=pool, norm=norm,
                   prenorm=prenorm).train(training)
    x = torch.randint(1, 16, (1, L))
    padded = torch.cat([x, torch.randint(1, 16, (1, 5))], dim=1)  # padding of real tokens: the hardest case
    before = {k: v.clone() for k, v in model.state_dict().items()}
    alone = model(x)
    after_alone = model.state_dict()
    model.load_state_dict(before)
    assert rel_err(model(padded, torch.tensor([L])), alone) < 1e-12
    for key, value in model.state_dict().items():  # BatchNorm's running statistics too
        assert torch.allclose(value.double(), after_alone[key].double(), atol=1e-15), key


@pytest.mark.parametrize("norm,prenorm", [("batch", True), ("scale", False), ("layer", False)])
def test_a_padded_batch_through_mega_lra_blocks_gives_the_outputs_of_its_sequences(norm, prenorm):
    """Mega as the official LRA models set it (non-causal, chunks, truncated EMA, the MLP head and Mega's embedding),
    in training: its own BatchNorms take their statistics over the real positions only. (The last position is read:
    the mean over the positions of one sequence after a BatchNorm in training is its bias, 0.)"""
    model = _model(layer="mega", layer_options={"ndim": 4, "causal": False, "chunk_size": 4, "truncation": 6},
                   norm=norm, prenorm=prenorm, head="mlp", encoder_init="mega", pool="last").train()
    x = torch.randint(1, 16, (1, L))
    padded = torch.cat([x, torch.randint(1, 16, (1, 5))], dim=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    alone = model(x)
    after_alone = model.state_dict()
    model.load_state_dict(before)
    assert rel_err(model(padded, torch.tensor([L])), alone) < 1e-12
    for key, value in model.state_dict().items():
        assert torch.allclose(value.double(), after_alone[key].double(), atol=1e-15), key


def test_a_padded_pair_model_and_a_non_causal_attention_hybrid_read_no_padding():
    model = _model(layer="mega", layer_options={"ndim": 4, "causal": False, "chunk_size": 4}, pair=True).eval()
    x = torch.randint(1, 16, (2, 2, L))
    lengths = torch.tensor([[5, 12], [12, 9]])
    other = x.clone()
    other[0, 0, 5:], other[1, 1, 9:] = torch.randint(1, 16, (7,)), torch.randint(1, 16, (3,))
    assert rel_err(model(other, lengths), model(x, lengths)) < 1e-12
    hybrid = _model(layer_options={"d_state": 8, "bidirectional": True}, attention_every=2).eval()
    hybrid.layers[1].causal = False
    assert rel_err(hybrid(x[:, 0], lengths[:, 0])[0], hybrid(x[:1, 0, :5])[0]) < 1e-12


def test_the_padding_token_embeds_to_zero_and_gets_no_gradient():
    model = _model(layer_options={"d_state": 8})
    assert model.encoder.weight[0].abs().sum() == 0
    model(torch.randint(0, 16, (2, L)), torch.tensor([4, 12])).sum().backward()
    assert model.encoder.weight.grad[0].abs().sum() == 0
    with pytest.raises(ValueError, match="padding_idx"):
        SequenceModel(16, 3, vocab_size=16, padding_idx=16)


def test_a_block_that_cannot_mask_padding_is_an_error():
    model = _model(layer_options={"d_state": 8})
    model.layers[0].forward = lambda u, state=None: (u, None)
    with pytest.raises(ValueError, match="lengths: block 0"):
        model(torch.randint(0, 16, (2, L)), torch.tensor([4, 12]))


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_mask_padding_off_reads_the_padding_as_the_official_dss_and_s5_models(pool):
    """mask_padding=False: the blocks and BatchNorm (in training) run over the whole padded batch as if unpadded;
    only the pooling uses the lengths; the padding token is an ordinary trained embedding."""
    options = dict(layer="s5", layer_options={"bidirectional": True}, norm="batch", pool=pool)
    model = _model(mask_padding=False, **options).train()
    x, lengths = torch.randint(0, 16, (2, L)), torch.tensor([7, 12])
    x[1, 3] = 0
    assert model.encoder.weight[0].abs().sum() > 0 and model.config["mask_padding"] is False
    reference = _model(**options).train()
    reference.load_state_dict(model.state_dict())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = reference._features(x)  # every position, no lengths
    pooled = h[torch.arange(2), lengths - 1] if pool == "last" else torch.stack(
        [h[b, :n].mean(0) for b, n in enumerate(lengths.tolist())])
    model.load_state_dict(before)
    y = model(x, lengths)
    assert rel_err(y, reference.decoder(pooled)) < 1e-12
    for key, value in model.state_dict().items():  # BatchNorm's statistics over all B·L positions
        assert torch.allclose(value, reference.state_dict()[key], atol=1e-15), key
    y.sum().backward()
    assert model.encoder.weight.grad[0].abs().sum() > 0
    other = x.clone()
    other[0, 7:] = (x[0, 7:] + 1) % 16
    assert rel_err(model.eval()(other, lengths)[0], model(x, lengths)[0]) > 1e-6  # the backward scan read it
    with pytest.raises(ValueError, match="mask_padding: expected true, false or 'layers'"):
        _model(mask_padding="no")


@pytest.mark.parametrize("prenorm", [False, True])
def test_mask_padding_layers_masks_the_layers_and_lets_the_norms_read_the_padding(prenorm):
    """mask_padding='layers' (the official S4 LRA backbone): each layer zeroes its input beyond the lengths, while the
    residual stream and BatchNorm's training statistics (and the final norm) take every position, the padding token an
    ordinary trained embedding. Built here block by block from its definition."""
    options = dict(layer="s4", layer_options={"bidirectional": True, "d_state": 4}, norm="batch",
                   prenorm=prenorm)
    model = _model(mask_padding="layers", **options).train()
    x, lengths = torch.randint(0, 16, (2, L)), torch.tensor([7, 12])
    x[0, 7:] = 0
    assert model.encoder.weight[0].abs().sum() > 0 and model.config["mask_padding"] == "layers"
    reference = _model(mask_padding="layers", **options).train()
    reference.load_state_dict(model.state_dict())
    h = reference.encoder(x)
    for layer, norm in zip(reference.layers, reference.norms):
        if prenorm:
            h = h + layer(norm(h), lengths=lengths)[0]  # ChannelBatchNorm without real positions: all B·L
        else:
            h = norm(h + layer(h, lengths=lengths)[0])
    h = reference.final_norm(h)
    pooled = torch.stack([h[b, :n].mean(0) for b, n in enumerate(lengths.tolist())])
    y = model(x, lengths)
    assert rel_err(y, reference.decoder(pooled)) < 1e-12
    for key, value in model.state_dict().items():  # the running statistics moved alike
        assert torch.allclose(value, reference.state_dict()[key], atol=1e-15), key
    y.sum().backward()
    assert model.encoder.weight.grad[0].abs().sum() > 0  # the padding row trains through the norms' statistics
    other = x.clone()
    other[0, 7:] = 5
    model.eval()  # running statistics: what the padding holds reaches no real position (the layers mask it)
    assert rel_err(model(other, lengths), model(x, lengths)) < 1e-12
    model.train()
    assert rel_err(model(other, lengths)[0], model(x, lengths)[0]) > 1e-6  # in training it moves the statistics


def test_trim_padding_cuts_a_batch_to_its_longest_sequence_and_changes_no_masked_output():
    from ssmkit.train.trainer import trimmed
    x, pairs = torch.randint(1, 16, (3, L)), torch.randint(1, 16, (2, 2, L))
    assert trimmed(x, [torch.tensor([4, 9, 2])]).shape == (3, 9) and trimmed(x, []) is x
    assert trimmed(pairs, [torch.tensor([[3, 5], [7, 2]])]).shape == (2, 2, 7)
    model = _model(layer_options={"d_state": 8, "bidirectional": True}).eval()
    lengths = torch.tensor([4, 9, 2])
    assert rel_err(model(trimmed(x, [lengths]), lengths), model(x, lengths)) < 1e-12


def test_trim_padding_is_refused_for_a_per_position_dataset(tmp_path):
    from ssmkit import data
    from ssmkit.train import make_config
    from ssmkit.train.build import build_model
    (tmp_path / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    config = make_config(["dataset=text", f"data_dir={tmp_path}", "trim_padding=true", "dataset_options.seq_len=16"])
    with pytest.raises(ValueError, match="trim_padding: cuts the inputs .* per-position \\(lm\\) dataset"):
        build_model(config, data.build("text", str(tmp_path), "train", seq_len=16))


def test_a_trimmed_run_gives_each_micro_batch_its_own_longest_sequence(tmp_path, monkeypatch):
    """Through the trainer: with trim_padding and accumulate=2, every micro-batch reaches the model cut to its own
    longest sequence (as each collated batch of the official loaders), in training and in evaluation."""
    from ssmkit.data.listops import write_listops
    from ssmkit.train import make_config, train
    write_listops(tmp_path / "data", 24, 8, 8, seed=1, min_length=10, max_length=60, max_depth=4)
    seen = []
    real = SequenceModel.forward

    def recording(self, x, lengths=None, *a, **k):
        seen.append((x.shape[1], int(lengths.max())))
        return real(self, x, lengths, *a, **k)

    monkeypatch.setattr(SequenceModel, "forward", recording)
    train(make_config(["dataset=listops", f"data_dir={tmp_path / 'data'}", "dataset_options.max_length=64",
                       "d_model=8", "n_layers=1", "d_state=4", "epochs=1", "batch_size=8", "accumulate=2",
                       "warmup_epochs=0", "trim_padding=true", f"out_dir={tmp_path}"]), log=lambda *_: None)
    assert seen and all(length == longest for length, longest in seen)
    assert len({length for length, _ in seen}) > 1  # the lengths differ between batches


@pytest.mark.parametrize("prenorm", [False, True])
def test_longest_norms_make_a_batch_padded_further_give_its_trimmed_outputs(prenorm):
    """mask_padding='layers' with longest_norms: a batch padded beyond its longest sequence (trim_padding off, one
    fixed length) gives, in training, the outputs, gradients and running statistics of the same batch cut to its
    longest (the official's batches), whatever the extra padding holds; without longest_norms it does not."""
    options = dict(layer="s4", layer_options={"bidirectional": True, "d_state": 4}, norm="batch", prenorm=prenorm,
                   mask_padding="layers")
    x, lengths = torch.randint(0, 16, (2, L)), torch.tensor([5, 9])
    x[0, 5:] = 0
    x[:, 9:] = torch.randint(0, 16, (2, L - 9))  # beyond the longest: anything
    results = {}
    for name, longest, inputs in (("trimmed", False, x[:, :9]), ("further", True, x), ("plain", False, x)):
        torch.manual_seed(0)
        model = _model(longest_norms=longest, **options).train()
        y = model(inputs, lengths)
        y.square().sum().backward()
        results[name] = (y, {n: p.grad for n, p in model.named_parameters()}, model.state_dict())
    (y0, g0, s0), (y1, g1, s1) = results["trimmed"], results["further"]
    assert rel_err(y1, y0) < 1e-12
    assert all(rel_err(g1[n], g0[n]) < 1e-10 for n in g0)
    assert all(torch.allclose(s1[k].double(), s0[k].double(), atol=1e-13) for k in s0)
    assert rel_err(results["plain"][0], y0) > 1e-6  # the plain 'layers' reading takes the extra padding in
    with pytest.raises(ValueError, match="longest_norms: expected true only with mask_padding='layers'"):
        _model(longest_norms=True)


def test_build_asks_for_longest_norms_where_batches_are_not_trimmed(tmp_path):
    from ssmkit import data
    from ssmkit.data.listops import write_listops
    from ssmkit.train import load_experiment, make_config
    from ssmkit.train.build import build_model
    write_listops(tmp_path, 4, 2, 2, min_length=10, max_length=40)
    dataset = data.build("listops", str(tmp_path), "train", max_length=40)
    for trim in (True, False):
        config = make_config([f"trim_padding={str(trim).lower()}", "d_model=8", "n_layers=1", "d_state=4"],
                             load_experiment("lra-listops"), source="lra-listops")
        assert build_model(config, dataset).longest_norms is not trim


def test_longest_norms_refuse_batchnorm_synchronized_across_processes(monkeypatch):
    """Under DistributedDataParallel (SyncBatchNorm over several processes) the window's statistics would be each
    process's own: a clear error naming trim_padding, not silently different statistics."""
    model = SequenceModel(3, 4, layer="s4d", d_model=8, n_layers=1, norm="batch", prenorm=False,
                          mask_padding="layers", longest_norms=True, layer_options={"d_state": 4})
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
    with pytest.raises(ValueError, match="longest_norms: .*set trim_padding=true"):
        model(torch.randn(2, 10, 3), torch.tensor([6, 9]))
