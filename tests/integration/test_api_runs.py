"""The Python API on a trained run (the shared smoke SAGE run, a ResNet with BatchNorm): it loads, predicts on uint8
and float images, exports to safetensors without optimizer state, loads back; bad inputs are named."""

import numpy as np
import pytest

import sagejax
from sagejax.errors import ConfigError, DataError, MissingError


def test_a_run_loads_predicts_exports_and_loads_back(sage_run, tmp_path):
    trained, _ = sage_run
    run = sagejax.load(str(trained))
    assert run.step == 6 and run.config.method.name == "sage"
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    out = run.predict(images)
    assert out["logits"].shape == (4, 10) and out["embedding"].shape[0] == 4
    np.testing.assert_allclose(run.predict(images.astype(np.float32) / 255)["logits"], out["logits"], atol=1e-6)

    path = sagejax.export(str(trained), str(tmp_path / "weights.safetensors"))
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        keys = list(f.keys())
    assert any(k.startswith("batch_stats/") for k in keys) and any(k.startswith("params/") for k in keys)
    assert not any("opt" in k or "count" in k for k in keys)  # no optimizer state, no RNG counters
    model = sagejax.load_exported(path)
    again = sagejax.make_predict(model, run.config)(images)
    np.testing.assert_array_equal(again["logits"], out["logits"])


def test_bad_inputs_are_named(sage_run, tmp_path):
    trained, _ = sage_run
    run = sagejax.load(str(trained))
    with pytest.raises(DataError, match=r"images must be \(B, H, W, C\)"):
        run.predict(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="uint8 or float"):
        run.predict(np.zeros((1, 32, 32, 3), np.int64))
    with pytest.raises(MissingError, match="no exported weights file"):
        sagejax.load_exported(str(tmp_path / "none.safetensors"))
    path = sagejax.export(str(trained), str(tmp_path / "w.safetensors"))
    wider = run.config.copy_and_resolve_references()
    wider.model.kwargs.width = 8
    with pytest.raises(ConfigError, match=r"params/.*: .* holds shape .* the model needs"):
        sagejax.load_exported(path, wider)
