"""`optim.ema_decay`: the optimizer state keeps a moving average of the parameters after each update, starting
from the initial ones; it is found in the state, and a decay outside [0, 1) is named."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from sagejax.configs import common
from sagejax.train.optim import ema_params, make_optimizer, params_ema


def test_the_average_follows_its_recurrence_over_the_updated_parameters():
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    optimizer = optax.chain(optax.sgd(0.1), params_ema(0.9))
    state = optimizer.init(params)
    expected = jax.tree.map(np.asarray, params)
    for step in range(3):
        grads = jax.tree.map(lambda p: p * (step + 1), params)
        updates, state = optimizer.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * np.asarray(p), expected, params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), ema_params(state), expected)
    assert not np.allclose(ema_params(state)["w"], params["w"])  # an average, not the parameters


def test_the_configured_optimizer_keeps_an_average_only_when_asked():
    params = {"w": jnp.ones((2, 2))}
    plain = make_optimizer(common.optim(), 10).init(params)
    assert ema_params(plain) is None
    averaged = make_optimizer(common.optim(ema_decay=0.99), 10).init(params)
    np.testing.assert_array_equal(ema_params(averaged)["w"], params["w"])
    old = ml_collections.ConfigDict(common.optim().to_dict())
    del old.ema_decay  # a config saved before the key existed: no average
    assert ema_params(make_optimizer(old, 10).init(params)) is None
    for decay in (1.0, -0.1):
        with pytest.raises(ValueError, match=rf"config.optim.ema_decay={decay} must be in \[0, 1\)"):
            make_optimizer(common.optim(ema_decay=decay), 10)
