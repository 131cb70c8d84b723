r"""SAGE and its baselines on Digit PAD, the offline open-set presentation-attack benchmark (sagejax/data/digit_pad.py):
bona fide digits against four attack types whose evidence lies in the strokes, each with its own background
shortcut in `train` only.

One run (all attack types in training; APCER/BPCER with `attack` as the attack class):
  sagejax train --config digit_pad:sage --workdir workdirs/digit_pad_sage
The open-set protocol, one run per held-out attack type, for every method and seed (`sagejax pad_benchmark`):
  sagejax pad_benchmark --methods xent,sage --seeds 0,1,2 --workdir workdirs/digit_pad
Variants: a method of sage_decoy (`xent`, `xent_aug`, `cyborg`, `rrr`, `sage`, `sage_inverted`, ...) with its
settings there, except SAGE's weights: CHOSEN_SAGE, chosen on this dataset's validation split (README, "Open-set PAD
on Digit PAD"); `defaults` for the methods' DEFAULTS,
`no_shortcut` for the reference without the shortcut (random backgrounds in `train` too: what reading the strokes
alone reaches), `smoke` for a CPU check. ResNet-18 of width 16, 400 steps of batch 64, as on Decoy MNIST.
`validation` scores the attack types seen in training (settings are chosen there), `test` the held-out one under
leave-one-attack-out.
"""

import ml_collections

from sagejax.configs import common, sage_decoy

ATTACK_LABEL = "attack"
# SAGE's weights chosen on Digit PAD `validation` (AUROC, all four attack types in training, seeds 0, 1; a 3 × 3 grid
# of w_js = 3, 10, 30 and w_tri = 1, 3, 10): the JS weight matters, the triplet weight little.
CHOSEN_SAGE = dict(w_js=30.0, w_tri=1.0)


def get_config(arg: str | None = None):
    """Variants, comma separated: a method, optional `defaults`, `no_shortcut`, `smoke`."""
    arg = common.parse_arg(arg, choices={"method": sage_decoy.METHODS}, defaults=False, no_shortcut=False, smoke=False)
    config = sage_decoy.get_config(f"{arg.method},defaults")
    if config.method.name == "sage" and not arg.defaults:
        config.method.update(CHOSEN_SAGE)
    builder_config = "32_rgb_no_shortcut" if arg.no_shortcut else "32_rgb"
    config.data = common.data(name="digit_pad", builder_config=builder_config, num_classes=2)
    config.evals = ml_collections.ConfigDict()
    config.evals.validation = common.evaluator(
        "classification", splits=("validation",), every_steps=200, attack_label=ATTACK_LABEL
    )
    config.evals.classification = common.evaluator(
        "classification", splits=("test",), every_steps=0, attack_label=ATTACK_LABEL
    )
    if arg.smoke:
        common.smoke(config)
    return config
