"""SAGE (Crum, Sweet, Czajka): saliency-guided logit alignment and embedding triplets.

One forward pass over the stacked views [x, x', x~, x~'] (DESIGN §1.1); the views are built
on the device from the batch's saliency maps. Only the first `view_fraction` of the batch
gets saliency views; the cross-entropy always sees the whole batch. With `stop_gradient_targets`
the target views that need no gradient (x', and x unless it has a cross-entropy term) run in a
separate forward-only pass instead (`forward_views`), which removes their backward work.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from sagejax import losses, models
from sagejax.errors import ConfigError
from sagejax.methods.saliency_views import SALIENCY_VIEW_DEFAULTS, check_view_config, config_views, view_panels

VIEW_NAMES = ("x", "x_blur", "x_keep", "x_degrade")
DEFAULTS = dict(
    label_smoothing=0.0,
    temperature=2.0,  # T of the JS logit alignment
    t2_scale=True,  # multiply the JS terms by T²
    w_js=1.0,  # weight of JS(y‖y~) + JS(y'‖y~')
    w_tri=1.0,  # weight of the triplet (anchor z, positive z~, negative z~')
    margin=0.5,
    distance="squared_normalized_l2",  # or "l2", "cosine"
    batch_hard=False,  # hardest negative of the batch instead of z~'_i
    view_fraction=1.0,  # fraction of the batch that gets saliency views
    ce_views=("x",),  # views that get cross-entropy: x, x_blur, x_keep, x_degrade
    # Treat y, y' and z as fixed targets, and so run x' (and x unless in ce_views) forward-only (forward_views): one
    # switch, since a fixed target needs no backward pass; loss and gradient are unchanged without BatchNorm.
    stop_gradient_targets=False,
    hook="",  # "" = pooled penultimate features; else a tap name (models.available_taps)
    **SALIENCY_VIEW_DEFAULTS,
)
panels = view_panels


def num_view_examples(batch_size: int, view_fraction: float) -> int:
    """How many examples of a batch get saliency views (at least one when the fraction is > 0)."""
    if not 0.0 <= view_fraction <= 1.0:
        raise ConfigError(f"method.view_fraction must be in [0, 1], got {view_fraction}")
    return max(1, round(batch_size * view_fraction)) if view_fraction > 0 else 0


def gradient_views(config) -> tuple[str, ...]:
    """The views whose outputs get a gradient: all four, or with `stop_gradient_targets` only x~, x~' and the views
    with a cross-entropy term (x with the default `ce_views`: its logits also give the stopped target y)."""
    if not config.stop_gradient_targets:
        return VIEW_NAMES
    return tuple(name for name in VIEW_NAMES if name in ("x_keep", "x_degrade") or name in config.ce_views)


def frozen_copy(model):
    """A copy of `model` with `stop_gradient`-ed parameters: a pass through it does no backward work. In train mode
    its BatchNorm normalises with the batch statistics of the views it sees, and the running statistics it updates
    are the copy's and are dropped: the model's running statistics come from the gradient pass alone."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return nnx.merge(graphdef, jax.lax.stop_gradient(params), rest, copy=True)


def forward_stacked(apply, views: dict) -> dict:
    """Runs `apply(images) -> {key: (N, ...)}` once over `views` (name -> images) stacked on the batch axis; returns
    each view's outputs."""
    out = apply(jnp.concatenate(list(views.values()), axis=0))
    starts = itertools.accumulate((view.shape[0] for view in views.values()), initial=0)
    return {
        name: {key: value[start : start + view.shape[0]] for key, value in out.items()}
        for (name, view), start in zip(views.items(), starts)
    }


def forward_views(model, batch, rng, config):
    """Per-view outputs of x (whole batch), x', x~, x~' (first n): one pass over the four views stacked, or, with
    `stop_gradient_targets`, one over `gradient_views` and a forward-only pass of `frozen_copy` over the rest (their
    own BatchNorm batch statistics: on a model without BatchNorm the outputs are those of the single pass)."""
    images, saliency = batch["image"], batch["saliency"]
    n = num_view_examples(images.shape[0], config.view_fraction)
    built = config_views(config, images=images[:n], saliency=saliency[:n], rng=rng)
    views = {"x": images, **{name: built[name] for name in VIEW_NAMES[1:]}}
    trained = gradient_views(config)
    hook = config.hook or None
    out = forward_stacked(lambda x: models.forward(model, x, hook=hook), {name: views[name] for name in trained})
    targets = {name: view for name, view in views.items() if name not in trained}
    if targets:
        frozen = frozen_copy(model)
        out.update(forward_stacked(lambda x: models.forward(frozen, x, hook=hook), targets))
    return {name: out[name] for name in VIEW_NAMES}, n


def triplet_term(config, out, *, anchor, reduction="mean"):
    """The triplet on `forward_views` outputs: `anchor` (z), positive z~, negative z~' (config margin, distance)."""
    return losses.triplet_margin(
        anchor=anchor,
        positive=out["x_keep"]["embedding"],
        negative=out["x_degrade"]["embedding"],
        margin=config.margin,
        distance=config.distance,
        batch_hard=config.batch_hard,
        reduction=reduction,
    )


def check_config(config) -> None:
    """Impossible SAGE settings (unknown CE views, T <= 0, view settings), named before anything is built."""
    unknown_ce = sorted(set(config.ce_views) - set(VIEW_NAMES))
    if unknown_ce:
        raise ConfigError(f"method.ce_views has unknown views {unknown_ce}; choose from {list(VIEW_NAMES)}")
    if not config.temperature > 0:
        raise ConfigError(f"method.temperature must be > 0, got {config.temperature}")
    check_view_config(config)
    num_view_examples(2, config.view_fraction)


def make_loss(config):
    """L = CE + w_js·T²·[JS(y‖y~) + JS(y'‖y~')] + w_tri·triplet(z, z~, z~')."""
    check_config(config)

    def loss_fn(model, batch, rng):
        out, _ = forward_views(model, batch, rng, config)
        return loss_from_views(config, out, batch["label"])

    return loss_fn


def loss_from_views(config, out, labels):
    """SAGE's loss and metrics from the model outputs of the four views: `out[view]` = {"logits", "embedding"} for
    view in VIEW_NAMES, x over the whole batch (B) and x', x~, x~' over its first n examples; labels (B,)."""
    n = out["x_blur"]["logits"].shape[0]
    ce_terms = [
        losses.softmax_cross_entropy(
            logits=out[view]["logits"],
            labels=labels[: out[view]["logits"].shape[0]],
            label_smoothing=config.label_smoothing,
        )
        for view in config.ce_views
    ]
    ce = sum(ce_terms) / len(ce_terms)
    anchor_logits, blur_logits = out["x"]["logits"][:n], out["x_blur"]["logits"]
    anchor_z = out["x"]["embedding"][:n]
    if config.stop_gradient_targets:
        anchor_logits, blur_logits = jax.lax.stop_gradient((anchor_logits, blur_logits))
        anchor_z = jax.lax.stop_gradient(anchor_z)
    js_args = dict(temperature=config.temperature, t2_scale=config.t2_scale)
    js = losses.js_divergence(logits_a=anchor_logits, logits_b=out["x_keep"]["logits"], **js_args)
    js += losses.js_divergence(logits_a=blur_logits, logits_b=out["x_degrade"]["logits"], **js_args)
    hinges = triplet_term(config, out, anchor=anchor_z, reduction="none")
    triplet = jnp.mean(hinges)
    loss = ce + config.w_js * js + config.w_tri * triplet
    accuracy = jnp.mean(jnp.argmax(out["x"]["logits"], -1) == labels)
    # triplet_active: the fraction of triplets inside the margin, i.e. the ones that still give a gradient.
    metrics = {"ce": ce, "js": js, "triplet": triplet, "triplet_active": jnp.mean(hinges > 0)}
    return loss, {**metrics, "accuracy": accuracy}
