"""`config.data.normalize`: the model's first op maps [0, 1] pixels to (x − mean) / std, so a normalised model on raw
pixels equals the plain model on normalised ones; a bad spec and a model that cannot normalise are named."""

import jax.numpy as jnp
import numpy as np
import pytest

from sagejax import models
from sagejax.configs import sage_decoy
from sagejax.errors import ConfigError
from sagejax.models import normalize


@pytest.mark.parametrize("variant", ["sage,smoke", "sage,vit,smoke"])
def test_a_normalising_model_equals_the_plain_model_on_normalised_pixels(variant):
    config = sage_decoy.get_config(variant)
    plain = models.build_model(config)
    config.data.normalize = "imagenet"
    normalising = models.build_model(config)  # the same seed: the same parameters
    plain.eval(), normalising.eval()
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    mean, std = np.array(normalize.PRESETS["imagenet"][0]), np.array(normalize.PRESETS["imagenet"][1])
    expected = plain(jnp.asarray((images - mean) / std, jnp.float32))["logits"]
    np.testing.assert_allclose(normalising(jnp.asarray(images))["logits"], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(plain(jnp.asarray(images))["logits"], expected, atol=1e-3)


def test_specs_parse_and_bad_ones_are_named():
    assert normalize.parse("none") is None
    assert normalize.parse("0.5/0.25") == ((0.5,), (0.25,))
    assert normalize.parse("0.1,0.2,0.3/1,2,3") == ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))
    for bad in ("imagenett", "0.5", "0.1,0.2/1", "0.5/0", "a/b"):
        with pytest.raises(ConfigError, match=rf"config.data.normalize='{bad}': use \['none', 'imagenet'"):
            normalize.parse(bad)
    config = sage_decoy.get_config("sage,smoke")
    config.model.name, config.model.kwargs = "sagejax.models.unet:UNet", {}
    config.data.normalize = "imagenet"
    with pytest.raises(ConfigError, match="model 'sagejax.models.unet:UNet' does not normalise its inputs"):
        models.build_model(config)
