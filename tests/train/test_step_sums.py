"""StepSums: each training step's sums read from the device without waiting for every step; a non-finite loss is one
line. On a GPU a whole training step queues without a host-device synchronization."""
import pytest
import torch

import ssmkit
from ssmkit.layers.registry import LAYERS
from ssmkit.train.step_sums import StepSums


def test_sums_come_back_in_order_and_a_non_finite_loss_names_its_epoch_and_step():
    reader = StepSums(lag=2)
    read = []
    for step in range(1, 4):
        got = reader.push((step, 1, 0.1), torch.tensor([2.0 * step, 1.0, 4.0], dtype=torch.float64))
        assert [info[0] for info, _ in got] == ([step - 2] if step > 2 else [])  # exactly two steps behind
        read += got
    read += reader.finish()
    assert [info[0] for info, _ in read] == [1, 2, 3] and read[2][1] == [6.0, 1.0, 4.0]
    reader.push((7, 2, 0.1), torch.tensor([float("nan"), 0.0, 1.0], dtype=torch.float64))
    reader.push((8, 2, 0.1), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))
    with pytest.raises(FloatingPointError, match=r"epoch 2: the loss became nan \(step 7\); lower lr"):
        reader.push((9, 2, 0.1), torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_sums_lag_behind_the_queued_steps_and_all_arrive():
    reader = StepSums(lag=2)
    a = torch.randn(2048, 2048, device="cuda")
    read, want = [], []
    for step in range(6):
        a = a @ a / 64  # keep the GPU busy so that copies are still pending when pushed
        sums = torch.stack([a[0, 0].double(), torch.tensor(1.0, device="cuda").double(),
                            torch.tensor(3.0, device="cuda").double()])
        want.append(sums.tolist())
        got = reader.push((step, 1, 0.0), sums)
        assert len(reader.pending) == min(step + 1, 2) and [info[0] for info, _ in got] == ([step - 2] if step >= 2
                                                                                             else [])
        read += got
    read += reader.finish()
    assert [v for _, v in read] == want and not reader.pending


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_step_of_a_padded_lra_model_never_waits_for_the_device():
    """A step of an S4 LRA model on padded token batches (lengths, BatchNorm, mask_padding 'layers') with AdamW, after
    two warm-up steps (CUDA graph captures): no synchronizing call (torch.cuda.set_sync_debug_mode('error'))."""
    from ssmkit.models import SequenceModel
    model = SequenceModel(17, 10, layer="s4", d_model=64, n_layers=2, vocab_size=17, padding_idx=0, norm="batch",
                          prenorm=False, mask_padding="layers",
                          layer_options={"bidirectional": True, "d_state": 4}).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randint(1, 17, (4, 256)).pin_memory()
    lengths = torch.tensor([256, 200, 64, 9]).pin_memory()
    y = torch.randint(0, 10, (4,)).pin_memory()

    def step():
        xd, ld, yd = (t.to("cuda", non_blocking=True) for t in (x, lengths, y))
        loss = torch.nn.functional.cross_entropy(model(xd, ld), yd)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss)


# every registered layer but CKConv, whose kernel is cropped where its learned Gaussian mask falls below a threshold,
# read on the host at each forward (the official FlexConv does the same): its kernel's shape depends on its values
_NEEDS_L_MAX = {"mega", "sgconv"}
_CASES = [(name, dict(l_max=512) if name in _NEEDS_L_MAX else {}) for name in sorted(LAYERS) if name != "ckconv"] + [
    ("s4", dict(d_state=256, bidirectional=True)),  # the FFT path (BIDMC's)
    ("s4", dict(bidirectional=True, d_state=4)), ("s4d", dict(bidirectional=True)),  # the LRA layers
    ("liquid_s4", dict(liquid_form="official"))]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,options", _CASES, ids=str)
def test_cuda_layers_train_without_waiting_for_the_device(name, options):
    """Forward and backward of each layer in training, after a warm-up: no synchronizing call. One waits for the
    device at every step and keeps a model out of a CUDA graph (model_graph); three such (a value check, a host tensor
    copied in, a read of a mask) were in S4's FFT kernel and DSS-softmax's until BIDMC's model failed to capture."""
    layer = ssmkit.layer(name, d_model=16, **options).cuda().train()
    u = torch.randn(2, 512, 16, device="cuda", requires_grad=True)

    def step():
        y = layer(u)
        (y[0] if isinstance(y, tuple) else y).square().sum().backward()
    step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(u.grad).all()
