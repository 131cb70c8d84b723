"""The base of every sagejax dataset builder: built from local files only, never downloaded."""

import tensorflow_datasets as tfds


class OfflineBuilder(tfds.core.GeneratorBasedBuilder):
    """A GeneratorBasedBuilder that downloads nothing (abstract: tfds does not register it)."""

    # Nothing is downloaded, so there are no URL checksums; saying so also skips tfds's checksum
    # lookup, which imports the undeclared `importlib_resources` (tensorflow/datasets#11212).
    url_infos = None

    def current_sources(self, manual_dir: str | None) -> dict[str, str] | None:
        """What a build would be made from now (see `sagejax.data.sources`); None: not tracked or unknown."""
        return None
