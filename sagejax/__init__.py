"""sagejax: training vision models with human saliency as an extra signal, in JAX/Flax."""

__version__ = "0.1.0"
