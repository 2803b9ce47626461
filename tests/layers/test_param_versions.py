"""layers/param_versions.py: values formed from parameters are formed again when the parameters change; inside
parameters_frozen() (generate's token loop) their key is read once per context."""
import torch

from ssmkit.layers.param_versions import Derived, parameters_frozen, values_key
from ssmkit.models import Sashimi, generate


def _counted(p: torch.Tensor):
    calls = {"key": 0, "make": 0}

    def key():
        calls["key"] += 1
        return values_key([p])

    def make():
        calls["make"] += 1
        return p.detach().clone()
    return calls, key, make


def test_derived_values_follow_changes_and_frozen_contexts_read_the_key_once():
    p = torch.zeros(3)
    calls, key, make = _counted(p)
    value = Derived()
    for _ in range(2):
        value.get(key, make)
    assert calls == {"key": 2, "make": 1}  # outside a context: the key at every use
    p.add_(1.0)
    assert torch.equal(value.get(key, make), torch.ones(3)) and calls["make"] == 2
    with parameters_frozen():
        for _ in range(3):
            value.get(key, make)
        assert calls["key"] == 4  # once in the context
    with parameters_frozen():
        p.add_(1.0)  # before the context's first use: seen
        assert torch.equal(value.get(key, make), torch.full((3,), 2.0)) and calls["make"] == 3
        value.set(key(), torch.zeros(3))  # an explicit set (setup_step's) is kept for its key, checked at next use
        read = calls["key"]
        assert torch.equal(value.get(key, make), torch.zeros(3)) and calls["key"] == read + 1


def test_generation_follows_a_parameter_update_between_calls():
    """SaShiMi generated twice with an optimizer step between: the second call's logits are the forward pass's of the
    new weights (its fused levels packed again, its layers discretized again), on the same tokens."""
    torch.manual_seed(0)
    model = Sashimi(1, 16, d_model=8, n_layers=2, pool=[2], vocab_size=16, layer="s4",
                    layer_options={"n_ssm": 1, "d_state": 8}).double()
    prompt = torch.randint(0, 16, (2, 1))
    generate(model, prompt, 8, seed=0)
    model.train()
    x = torch.randint(0, 16, (2, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    optimizer.step()
    tokens, logits = generate(model, prompt, 8, seed=0)
    model.eval()
    with torch.no_grad():
        forward = model(tokens[:, :-1]).log_softmax(-1)
    assert torch.allclose(logits.log_softmax(-1), forward[:, -8:], atol=1e-9)
