"""Human saliency from a folder as a TFDS builder: `images/`, `maps/` (density) and `fixations/` matched by file
stem; a missing density is blurred from the fixations, missing fixations are the density's top-q pixels. Also the
features and readers that the `salicon` and `mnist_attention` builders share."""

import dataclasses
import pathlib
import re

import numpy as np
import scipy.ndimage
import tensorflow_datasets as tfds
from PIL import Image

from sagejax.data.image_files import WIDE_GRAY_MAX, read_image
from sagejax.data.offline import OfflineBuilder
from sagejax.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MAP_SUFFIXES = (*IMAGE_SUFFIXES, ".npy")
FIXATION_SUFFIXES = (".npy", ".csv", ".txt")


@dataclasses.dataclass(eq=False, kw_only=True)
class SaliencyConfig(tfds.core.BuilderConfig):
    """Stored size (height, width) of images and maps."""

    height: int = 240
    width: int = 320

    def __post_init__(self):
        if self.height <= 0 or self.width <= 0:
            raise DataError(f"height and width must be positive, got {self.height}x{self.width}")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the stored images and maps."""
        return self.height, self.width


def saliency_features(shape: tuple[int, int], **extra) -> tfds.features.FeaturesDict:
    """The features every saliency builder stores (plus `extra` ones): image, density, fixations, counts, id."""
    h, w = shape
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=(h, w, 3), dtype=np.uint8),
            "density": tfds.features.Tensor(
                shape=(h, w), dtype=np.uint8, doc="fixation density, scaled so its maximum is 255"
            ),
            "fixations": tfds.features.Tensor(
                shape=(h, w), dtype=np.uint8, doc="1 at fixated pixels (union over observers), else 0"
            ),
            "num_fixations": tfds.features.Scalar(
                dtype=np.int32, doc="fixation points read or derived, duplicates counted (>= fixations.sum())"
            ),
            "image_id": tfds.features.Text(doc="file stem, or the digit's index for mnist_attention"),
            **extra,
        }
    )


def load_image(path: pathlib.Path, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The image as uint8 (H, W, 3) RGB, bilinearly resized, and its source (H0, W0); ValueError naming the file."""
    try:
        return read_image(path, shape=shape, channels=3)
    except Exception as e:  # PIL raises many types for corrupt files; all mean "unreadable".
        raise DataError(f"cannot read image {path}: {e}") from e


def _read_map(path: pathlib.Path) -> np.ndarray:
    """A map file as float32: .npy as stored, images as their gray values (8 or 16 bit, or float)."""
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False).astype(np.float32)
    with Image.open(path) as im:
        return np.asarray(im if im.mode == "F" or im.mode in WIDE_GRAY_MAX else im.convert("L"), dtype=np.float32)


def load_density(path: pathlib.Path, *, source: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """A density map of the source image's size, bilinearly resized to `shape`, as float32 with maximum 1."""
    try:
        values = _read_map(path)
    except Exception as e:  # numpy and PIL raise many types for corrupt files.
        raise DataError(f"cannot read density map {path}: {e}") from e
    if values.shape != source:
        raise DataError(f"density map {path} is {values.shape[::-1]} (W, H), its image is {source[::-1]}")
    if not np.isfinite(values).all() or values.min() < 0:
        raise DataError(f"density map {path} must be finite and >= 0")
    if values.max() == 0:
        raise DataError(f"density map {path} is all zero")
    resized = np.asarray(Image.fromarray(values / values.max()).resize(shape[::-1], Image.BILINEAR))
    return resized / resized.max()


def to_uint8(density: np.ndarray) -> np.ndarray:
    """A non-negative map scaled so that its maximum is 255, as uint8."""
    return np.round(255 * density / density.max()).astype(np.uint8)


def fixation_map(
    points: np.ndarray, *, source: tuple[int, int], shape: tuple[int, int], origin: int, where: str
) -> np.ndarray:
    """Binary (H, W) uint8 map: 1 on the stored pixel covering each (x, y) of a (H0, W0) image whose pixel centres
    are at origin, origin + 1, ... (duplicates mark once); a point off the image is a ValueError naming `where`."""
    (h0, w0), (h, w) = source, shape
    x, y = points[:, 0] - origin + 0.5, points[:, 1] - origin + 0.5  # distances from the image's top-left edge
    outside = ~((x >= 0) & (x < w0) & (y >= 0) & (y < h0))
    if outside.any():
        px, py = points[np.argmax(outside)]
        raise DataError(f"{where}: fixation (x={px:g}, y={py:g}) lies outside the {w0}x{h0} image")
    cols = np.minimum(np.floor(x * w / w0).astype(int), w - 1)
    rows = np.minimum(np.floor(y * h / h0).astype(int), h - 1)
    fixations = np.zeros(shape, np.uint8)
    fixations[rows, cols] = 1
    return fixations


def blur_fixations(fixations: np.ndarray, sigma: float) -> np.ndarray:
    """Density from a fixation map: Gaussian blur with σ = sigma stored pixels (zero outside), maximum 1."""
    density = scipy.ndimage.gaussian_filter(fixations.astype(np.float64), sigma, mode="constant")
    return density / density.max()


def top_pixels(density: np.ndarray, quantile: float) -> tuple[np.ndarray, int]:
    """Binary map of the round(quantile·H·W) (>= 1) highest pixels with density > 0 (ties: raster order), and
    their count."""
    k = max(1, round(quantile * density.size))
    order = np.argsort(-density, axis=None, kind="stable")[:k]
    order = order[density.flat[order] > 0]
    fixations = np.zeros(density.shape, np.uint8)
    fixations.flat[order] = 1
    return fixations, len(order)


def read_points(path: pathlib.Path) -> np.ndarray:
    """(n, 2) float64 (x, y): the first two comma/space-separated fields of each line; empty and '#' lines are
    skipped, and so is a non-numeric first line (a header)."""
    points, first = [], True
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = [f for f in re.split(r"[,\s]+", line.strip()) if f]
        if not fields or fields[0].startswith("#"):
            continue
        try:
            if len(fields) < 2:
                raise DataError("fewer than 2 fields")
            points.append((float(fields[0]), float(fields[1])))
        except ValueError as e:
            if not first:
                raise DataError(f"{path} line {number}: expected 'x,y', got {line.strip()!r} ({e})") from e
        first = False
    return np.array(points, np.float64).reshape(-1, 2)


def load_fixations(
    path: pathlib.Path, *, source: tuple[int, int], shape: tuple[int, int], origin: int
) -> tuple[np.ndarray, int]:
    """Binary fixation map at `shape` and the number of points, from a `.npy` map of the source image's size
    (nonzero = fixated) or a `.csv`/`.txt` list of x,y points with pixel centres at origin (0 or 1)."""
    if path.suffix.lower() == ".npy":
        try:
            fixated = np.load(path, allow_pickle=False)
        except Exception as e:  # numpy raises many types for corrupt files.
            raise DataError(f"cannot read fixation map {path}: {e}") from e
        if fixated.shape != source:
            raise DataError(f"fixation map {path} is {fixated.shape[::-1]} (W, H), its image is {source[::-1]}")
        rows, cols = np.nonzero(fixated)
        points, origin = np.stack([cols, rows], axis=1).astype(np.float64), 0
    else:
        points = read_points(path)
    if not len(points):
        raise DataError(f"fixation file {path} has no fixations")
    return fixation_map(points, source=source, shape=shape, origin=origin, where=str(path)), len(points)


def files_by_stem(folder: pathlib.Path, suffixes: tuple[str, ...]) -> dict[str, pathlib.Path]:
    """{stem: path} of the files in `folder` with one of `suffixes` (any case); two files of one stem are an error."""
    found = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_file() and path.suffix.lower() in suffixes:
            if path.stem in found:
                raise DataError(f"two files for one image: {found[path.stem]} and {path}")
            found[path.stem] = path
    return found


@dataclasses.dataclass(eq=False, kw_only=True)
class SaliencyFolderConfig(SaliencyConfig):
    """Size, folder (else manual_dir), σ of derived densities, q of derived fixations, origin of x,y points."""

    folder: str | None = None
    sigma: float = 8.0  # stored pixels
    quantile: float = 0.01  # fraction of stored pixels
    origin: int = 0  # 1 for MATLAB-style points

    def __post_init__(self):
        super().__post_init__()
        if self.sigma <= 0:
            raise DataError(f"sigma must be positive, got {self.sigma!r}")
        if not 0 < self.quantile <= 1:
            raise DataError(f"quantile must be in (0, 1], got {self.quantile!r}")
        if self.origin not in (0, 1):
            raise DataError(f"origin must be 0 or 1, got {self.origin!r}")


@dataclasses.dataclass(frozen=True)
class FolderItem:
    """One image and its optional density map and fixation file."""

    image: pathlib.Path
    density: pathlib.Path | None
    fixations: pathlib.Path | None


class SaliencyFolder(OfflineBuilder):
    """Images with fixation density maps and/or fixations, read from `images/`, `maps/` and `fixations/`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "images/, maps/, fixations/ by stem; flat (one split) or one subfolder per split."}
    # A build lives at data_dir/saliency_folder/<config name>/: give each dataset its own data_dir or config name.
    BUILDER_CONFIGS = [
        SaliencyFolderConfig(name=f"{h}x{w}", description=f"{h}x{w} (H x W)", height=h, width=w)
        for h, w in ((240, 320), (480, 640), (224, 224))
    ]
    DEFAULT_CONFIG_NAME = "240x320"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put images in manual_dir/images/ (or the config's folder), density maps (image or .npy, any scale) in maps/ "
        "and fixations (.npy binary map, or .csv/.txt x,y points) in fixations/, each named by the image's stem. "
        "Subfolders of images/ (with the same subfolders in maps/ and fixations/) become splits; else one 'train'."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Images with human fixation density maps and binary fixation maps. A missing density is the "
                "fixation map blurred with a Gaussian of σ = config.sigma stored pixels; missing fixations are the "
                "round(config.quantile·H·W) pixels of highest density."
            ),
            features=saliency_features(self.builder_config.shape),
        )

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        root = pathlib.Path(cfg.folder) if cfg.folder else pathlib.Path(dl_manager.manual_dir)
        if not (root / "images").is_dir():
            raise DataError(f"{root}: no images/ folder")
        subfolders = sorted(p.name for p in (root / "images").iterdir() if p.is_dir())
        if subfolders and files_by_stem(root / "images", IMAGE_SUFFIXES):
            raise DataError(f"{root}/images: holds both split subfolders {subfolders} and images; use one layout")
        splits = {name: pathlib.Path(name) for name in subfolders} or {"train": pathlib.Path()}
        for name in splits:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise DataError(f"{root}/images/{name}: split names must be identifiers ([A-Za-z_][A-Za-z0-9_]*)")
        return {name: self._generate_examples(self._items(root, sub)) for name, sub in splits.items()}

    def _items(self, root: pathlib.Path, sub: pathlib.Path) -> list[FolderItem]:
        images = files_by_stem(root / "images" / sub, IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{root / 'images' / sub}: no images ({', '.join(IMAGE_SUFFIXES)})")
        maps = files_by_stem(root / "maps" / sub, MAP_SUFFIXES)
        fixations = files_by_stem(root / "fixations" / sub, FIXATION_SUFFIXES)
        items = []
        for stem, image in images.items():
            if stem not in maps and stem not in fixations:
                raise DataError(
                    f"image {image} has neither a density map in {root / 'maps' / sub} nor fixations in "
                    f"{root / 'fixations' / sub} (same stem)"
                )
            items.append(FolderItem(image, maps.get(stem), fixations.get(stem)))
        return items

    def _generate_examples(self, items):
        cfg = self.builder_config
        for item in items:
            image, source = load_image(item.image, cfg.shape)
            if item.fixations is not None:
                fixations, count = load_fixations(item.fixations, source=source, shape=cfg.shape, origin=cfg.origin)
            if item.density is not None:
                density = load_density(item.density, source=source, shape=cfg.shape)
            else:
                density = blur_fixations(fixations, cfg.sigma)
            if item.fixations is None:
                fixations, count = top_pixels(density, cfg.quantile)
            example = {
                "image": image,
                "density": to_uint8(density),
                "fixations": fixations,
                "num_fixations": count,
                "image_id": item.image.stem,
            }
            yield item.image.stem, example
