"""SALICON (Jiang et al., CVPR 2015) as a TFDS builder, read from the LSUN 2017 challenge release in manual_dir.

Layout (salicon.net/challenge-2017; the same paths in pysaliency's SALICON loader and public SALICON loaders):
`images/{train,val,test}/COCO_{train,val,test}2014_<12-digit id>.jpg` (640x480 MS-COCO 2014 images; 10,000 train,
5,000 val, 5,000 test), `maps/{train,val}/<stem>.png` (fixation density maps, 8-bit gray, image size) and
`fixations/{train,val}/<stem>.mat`: a MATLAB variable `gaze`, a struct array with one entry per observer
(`scipy.io.loadmat` gives shape (observers, 1)) whose fields are `location` (mouse samples), `timestamp` (ms) and
`fixations`: (n, 2) rows of (x, y) in 1-based pixel coordinates (pysaliency subtracts 1, "matlab: one-based
indexing"). Only `fixations` is read; pysaliency clips out-of-image points of the mouse samples, we reject any
fixation outside the image. The test images come without ground truth, so `test` is left out.
"""

import pathlib

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from sagejax.data.offline import OfflineBuilder
from sagejax.data.saliency_folder import (
    SaliencyConfig,
    fixation_map,
    load_density,
    load_image,
    saliency_features,
    to_uint8,
)
from sagejax.errors import DataError

SPLIT_FOLDERS = {"train": "train", "validation": "val"}


def read_gaze(path: pathlib.Path) -> np.ndarray:
    """All observers' fixations in a SALICON .mat file as (n, 2) float64 1-based (x, y); ValueError naming it."""
    try:
        gaze = scipy.io.loadmat(path)["gaze"]
    except Exception as e:  # scipy raises many types (and KeyError) for unreadable or foreign .mat files.
        raise DataError(f"cannot read the 'gaze' variable of {path}: {e!r}") from e
    if gaze.dtype.names is None or "fixations" not in gaze.dtype.names:
        raise DataError(f"{path}: 'gaze' is not a struct array with a 'fixations' field")
    points = []
    for observer, entry in enumerate(gaze.ravel(), start=1):
        fixations = np.asarray(entry["fixations"], dtype=np.float64)
        if fixations.size == 0:  # an observer without fixations is stored as []
            continue
        if fixations.ndim != 2 or fixations.shape[1] != 2:
            raise DataError(f"{path}: gaze({observer}).fixations has shape {fixations.shape}, expected (n, 2)")
        points.append(fixations)
    if not points:
        raise DataError(f"{path}: no fixations")
    return np.concatenate(points)


class Salicon(OfflineBuilder):
    """SALICON train and validation: images, density maps and fixation maps, resized to the config's size."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "LSUN 2017 release: images, maps (.png) and fixations (.mat) of train and val."}
    BUILDER_CONFIGS = [
        SaliencyConfig(name=f"{h}x{w}", description=f"{h}x{w} (H x W)", height=h, width=w)
        for h, w in ((240, 320), (480, 640))
    ]
    DEFAULT_CONFIG_NAME = "240x320"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download the images, fixations and saliency maps of the SALICON LSUN 2017 release "
        "(http://salicon.net/challenge-2017) and unpack them into manual_dir so that it holds images/train, "
        "images/val, maps/train, maps/val, fixations/train and fixations/val."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "SALICON: MS-COCO images with fixations inferred from mouse tracking. `density` is the released "
                "map resized (maximum 255); `fixations` marks every pixel that any observer's fixation falls on "
                "after scaling; `num_fixations` counts all observers' fixations; `image_id` is the file stem."
            ),
            features=saliency_features(self.builder_config.shape),
            homepage="http://salicon.net/",
            citation=(
                "@inproceedings{jiang2015salicon, title={SALICON: Saliency in Context}, author={Jiang, Ming and "
                "Huang, Shengsheng and Duan, Juanyong and Zhao, Qi}, booktitle={CVPR}, year={2015}}"
            ),
        )

    def _split_generators(self, dl_manager):
        root = pathlib.Path(dl_manager.manual_dir)
        splits = {
            name: self._items(root, folder)
            for name, folder in SPLIT_FOLDERS.items()
            if (root / "images" / folder).is_dir()
        }
        if not splits:
            raise DataError(f"{root}: neither images/train nor images/val exists")
        return {name: self._generate_examples(items) for name, items in splits.items()}

    def _items(self, root: pathlib.Path, folder: str) -> list[tuple[pathlib.Path, pathlib.Path, pathlib.Path]]:
        """(image, density map, fixation file) of every image of one split; ValueError naming a missing file."""
        images = sorted((root / "images" / folder).glob("*.jpg"))
        if not images:
            raise DataError(f"{root / 'images' / folder}: no .jpg images")
        items = []
        for image in images:
            density = root / "maps" / folder / f"{image.stem}.png"
            fixations = root / "fixations" / folder / f"{image.stem}.mat"
            for path, what in ((density, "density map"), (fixations, "fixation file")):
                if not path.is_file():
                    raise DataError(f"missing {what} {path} for image {image}")
            items.append((image, density, fixations))
        return items

    def _generate_examples(self, items):
        shape = self.builder_config.shape
        for image_path, density_path, fixations_path in items:
            image, source = load_image(image_path, shape)
            points = read_gaze(fixations_path)
            example = {
                "image": image,
                "density": to_uint8(load_density(density_path, source=source, shape=shape)),
                "fixations": fixation_map(points, source=source, shape=shape, origin=1, where=str(fixations_path)),
                "num_fixations": len(points),
                "image_id": image_path.stem,
            }
            yield image_path.stem, example
