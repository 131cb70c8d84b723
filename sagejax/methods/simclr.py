"""SimCLR students (Chen et al. 2020; Yao et al. 2023 for the attention term): NT-Xent over two views of the global
batch, plus λ·KLD − β·NSS of the attention head against the map each view sees.

`simclr` has no attention term; `simclr_attn` reads teacher maps written by `sagejax label`; `simclr_cotrain` reads
human maps and counts only the examples that have one. Under jit over the mesh the batch is global, so NT-Xent's
negatives and BatchNorm statistics span every device.
"""

from __future__ import annotations

from sagejax import losses
from sagejax.errors import ConfigError
from sagejax.methods import student_attention

DEFAULTS = dict(temperature=0.2, **student_attention.DEFAULTS)
ATTENTION_DEFAULTS = {**DEFAULTS, "kld_weight": 1.0, "nss_weight": 0.1}
COTRAIN_DEFAULTS = {
    **ATTENTION_DEFAULTS,
    "attention_map": "density",
    "attention_fixations": "fixations",
    "attention_masked": True,
}


def check_config(config) -> None:
    """Impossible view, attention or temperature settings, named before anything is built."""
    student_attention.check_config(config)
    if not config.temperature > 0:
        raise ConfigError(f"method.temperature must be > 0, got {config.temperature}")


def make_loss(config):
    """NT-Xent (temperature τ) of the projections of two views, plus the attention term when its weights are set."""
    check_config(config)
    teacher_targets = student_attention.make_teacher_targets(config)

    def loss_fn(model, batch, rng):
        if batch["image"].shape[0] < 2:
            raise ConfigError("NT-Xent needs at least 2 examples per batch (the other examples are the negatives)")
        images, targets = student_attention.simclr_views(config, batch, rng, 2, teacher_targets)
        outputs = model(images)
        projection = student_attention.require(outputs, "projection", "simclr")
        contrastive = losses.nt_xent(embeddings=projection, temperature=config.temperature)
        attention, metrics = student_attention.attention_term(config, outputs, targets)
        return contrastive + attention, {"contrastive": contrastive, **metrics}

    return loss_fn
