"""An override of ``layer`` on an experiment: the experiment's layer_options that the new layer takes stay, the rest
are dropped with a warning (they were written for the experiment's own layer)."""
import pytest

from ssmkit.train import load_experiment, make_config


def test_layer_override_keeps_the_options_the_new_layer_takes():
    with pytest.warns(UserWarning, match=r"layer=gss: layer_options \['init'\] of experiment digits's s4d dropped"):
        config = make_config(["layer=gss"], load_experiment("digits"), source="experiment digits")
    assert config.layer == "gss" and config.layer_options == {"dropout": 0.0}  # the option gss also takes stays
    config = make_config(["layer=s4d"], load_experiment("lra-listops"), source="experiment lra-listops")
    assert config.layer_options["bidirectional"] is True and config.layer_options["dt_transform"] == "softplus"


def test_options_the_user_sets_are_kept_and_checked():
    with pytest.warns(UserWarning, match="dropped"):
        config = make_config(["layer=dss", "layer_options.variant=exp"], load_experiment("digits"))
    assert config.layer_options == {"variant": "exp", "dropout": 0.0}
    with pytest.raises(ValueError, match="unknown option 'init'"):  # a whole layer_options override is the user's
        make_config(["layer=dss", "layer_options={init: legs}"], load_experiment("digits"))


def test_an_empty_experiment_file_is_an_error(tmp_path):
    (tmp_path / "e.yaml").write_text("# only a comment\n")
    with pytest.raises(ValueError, match="sets no config keys"):
        load_experiment(str(tmp_path / "e.yaml"))
