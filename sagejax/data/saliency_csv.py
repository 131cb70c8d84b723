"""User data with human saliency as a TFDS builder: every `<split>.csv` (image,label,saliency[,attack_type])
becomes a split, and all rows are decoded and checked before anything is written. Images and maps are stored as
pixels resized to one size (`rgb_224`, ...), or encoded at the image's full resolution (`rgb_encoded`, cropped by
the loader on the host: `config.data.image_size`)."""

import csv
import dataclasses
import hashlib
import io
import pathlib
import re
import warnings

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from sagejax.data import sources
from sagejax.data.image_files import WIDE_GRAY_MAX, encode_image, png_bytes, read_image
from sagejax.data.offline import OfflineBuilder
from sagejax.errors import DataError, DataWarning

REQUIRED_COLUMNS = ("image", "label", "saliency")
NO_ATTACK = "none"  # attack_type name of rows whose attack_type is empty or absent.
ASPECT_TOLERANCE = 0.02  # relative aspect-ratio difference between a map and its image that warns


@dataclasses.dataclass(eq=False, kw_only=True)
class SaliencyCsvConfig(tfds.core.BuilderConfig):
    """Output size (int, or (H, W); None = encoded bytes at full resolution), channels (1 | 3), CSV folder (else
    manual_dir), fixed label names, and the fraction of train.csv held out as the `validation` split when there is no
    validation.csv (0 = none)."""

    size: int | tuple[int, int] | None = 224
    channels: int = 3
    csv_dir: str | None = None
    label_names: tuple[str, ...] | None = None
    validation_fraction: float = 0.0
    validation_seed: int = 0

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise DataError(f"channels must be 1 or 3, got {self.channels!r}")
        if not 0 <= self.validation_fraction < 1:
            raise DataError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if not self.encoded and min(self.shape) <= 0:
            raise DataError(f"size must be positive, got {self.size!r}")

    @property
    def encoded(self) -> bool:
        """Whether images (JPEG/PNG as given) and maps (PNG) are stored encoded, each at its image's resolution."""
        return self.size is None

    @property
    def shape(self) -> tuple[int, int] | None:
        """(H, W) of the stored images and maps; None when encoded (each its own)."""
        if self.encoded:
            return None
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)


@dataclasses.dataclass(frozen=True)
class CsvRow:
    """One parsed CSV row; `where` names it in errors ("train.csv row 2 (line 3)")."""

    where: str
    line: int
    image: pathlib.Path
    label: str
    saliency: pathlib.Path | None
    attack_type: str


def read_csv(path: pathlib.Path) -> list[CsvRow]:
    """Parses one split's CSV (UTF-8, with or without a byte-order mark); paths are relative to the CSV's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); save the CSV as UTF-8"
        ) from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the header must be image,label,saliency[,attack_type]")
    rows = []
    for fields in reader:
        where = f"{path.name} row {len(rows) + 1} (line {reader.line_num})"
        values = {k: (v or "").strip() for k, v in fields.items() if isinstance(k, str)}
        for column in ("image", "label"):
            if not values[column]:
                raise DataError(f"{where}: empty '{column}' field")
        rows.append(
            CsvRow(
                where=where,
                line=reader.line_num,
                image=path.parent / values["image"],
                label=values["label"],
                saliency=path.parent / values["saliency"] if values["saliency"] else None,
                attack_type=values.get("attack_type") or NO_ATTACK,
            )
        )
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def warn_repeated_images(splits: dict[str, list[CsvRow]]) -> None:
    """Warns when one image (same bytes) is listed twice in a split, or in train and in another split."""
    first_rows = {}  # split → image digest → the first row listing it
    for name, rows in splits.items():
        first = first_rows[name] = {}
        for row in rows:
            digest = hashlib.sha256(row.image.read_bytes()).hexdigest()
            if digest in first:
                warnings.warn(f"{row.where}: same image as {first[digest].where} ({row.image.name})", DataWarning)
            else:
                first[digest] = row
    train = first_rows.get("train", {})
    for name, first in first_rows.items():
        shared = [digest for digest in first if name != "train" and digest in train]
        if shared:
            warnings.warn(
                f"{len(shared)} image(s) of {name}.csv also appear in train.csv (first: {first[shared[0]].where} = "
                f"{train[shared[0]].where}); {name} is not held out from training",
                DataWarning,
            )


def carve_validation(rows: list[CsvRow], *, fraction: float, seed: int) -> tuple[list[CsvRow], list[CsvRow]]:
    """(train, validation): a seeded `fraction` of each label's rows held out, both in CSV order."""
    rng = np.random.default_rng(seed)
    held_out = set()
    for label in sorted_labels(row.label for row in rows):
        members = [i for i, row in enumerate(rows) if row.label == label]
        held_out.update(rng.permutation(members)[: round(len(members) * fraction)].tolist())
    if len(held_out) in (0, len(rows)):
        raise DataError(f"validation_fraction={fraction} of {len(rows)} train.csv rows leaves an empty split")
    return [r for i, r in enumerate(rows) if i not in held_out], [r for i, r in enumerate(rows) if i in held_out]


def with_validation(config_name: str, fraction: float) -> "SaliencyCsvConfig":
    """The predefined config `config_name` holding out `fraction` of train.csv as `validation` (its own build
    folder, `<config_name>_val<fraction>`)."""
    wanted = config_name or SaliencyCsv.DEFAULT_CONFIG_NAME
    base = next((c for c in SaliencyCsv.BUILDER_CONFIGS if c.name == wanted), None)
    if base is None:
        known = [c.name for c in SaliencyCsv.BUILDER_CONFIGS]
        raise DataError(f"unknown saliency_csv config {config_name!r}; known: {known}")
    name = f"{base.name}_val{fraction:g}".replace(".", "p")
    return dataclasses.replace(base, name=name, validation_fraction=fraction)


def sorted_labels(labels) -> list[str]:
    """Distinct labels, numerically sorted when all are integers (so "2" < "10"), else sorted."""
    distinct = set(labels)
    if all(re.fullmatch(r"-?\d+", label) for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def load_image(row: CsvRow, *, shape: tuple[int, int], channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The row's image as uint8 (H, W, channels), bilinearly resized, and its source (H0, W0); errors name the row."""
    if not row.image.is_file():
        raise DataError(f"{row.where}: image file not found: {row.image}")
    try:
        return read_image(row.image, shape=shape, channels=channels)
    except Exception as e:  # PIL raises many types for corrupt files; all mean "unreadable".
        raise DataError(f"{row.where}: cannot read image {row.image}: {e}") from e


def _read_map(path: pathlib.Path, where: str) -> np.ndarray:
    """A map file's raw array: .npy as stored; images as float32 scaled by their bit depth (colour maps as their
    luminance, with a warning)."""
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    with Image.open(path) as im:
        if im.mode == "F":
            return np.asarray(im, dtype=np.float32)
        if "A" in im.getbands():  # LA, RGBA, PA: a map may be drawn in the alpha channel over a uniform colour
            rgba = np.asarray(im.convert("RGBA"))
            colour, alpha = rgba[..., :3], rgba[..., 3]
            if (colour == colour.flat[0]).all() and (alpha != alpha.flat[0]).any():
                warnings.warn(
                    f"{where}: saliency map {path} has a uniform colour and varies only in its alpha channel; "
                    "read the alpha channel",
                    DataWarning,
                )
                return alpha.astype(np.float32) / 255
        if im.mode in WIDE_GRAY_MAX:
            return np.asarray(im, dtype=np.float32) / WIDE_GRAY_MAX[im.mode]
        if im.mode not in ("L", "1", "LA"):
            rgb = np.asarray(im.convert("RGB"))
            if (rgb != rgb[..., :1]).any():
                warnings.warn(
                    f"{where}: saliency map {path} is a colour ({im.mode}) image; read as its luminance", DataWarning
                )
        return np.asarray(im.convert("L"), dtype=np.float32) / 255


def load_encoded(row: CsvRow, *, channels: int) -> tuple[bytes, tuple[int, int]]:
    """The row's image file as encoded bytes at full resolution (see `image_files.encode_image`) and its (H0, W0);
    the whole file is decoded once here, so a corrupt or truncated file stops the build naming the row."""
    if not row.image.is_file():
        raise DataError(f"{row.where}: image file not found: {row.image}")
    try:
        return encode_image(row.image, channels=channels)
    except Exception as e:  # PIL raises many types for corrupt files; all mean "unreadable".
        raise DataError(f"{row.where}: cannot read image {row.image}: {e}") from e


def load_saliency(row: CsvRow, *, shape: tuple[int, int], source: tuple[int, int] | None = None) -> np.ndarray:
    """The row's map as uint8 (H, W) = round(255·map), bilinearly resized; zeros if the row has none.

    Float maps (.npy, mode-F TIFF) must be finite and in [0, 1]; uint8 .npy and images are scaled. A map whose
    aspect ratio differs from its image's `source` (H0, W0) size warns: stretched to the stored size, it may not
    line up with the image.
    """
    path = row.saliency
    if path is None:
        return np.zeros(shape, np.uint8)
    if not path.is_file():
        raise DataError(f"{row.where}: saliency file not found: {path}")
    try:
        arr = _read_map(path, row.where)
    except Exception as e:  # numpy and PIL raise many types for corrupt files.
        raise DataError(f"{row.where}: cannot read saliency map {path}: {e}") from e
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DataError(f"{row.where}: saliency map {path} must be 2-D, got shape {arr.shape}")
    if source is not None and abs(arr.shape[0] * source[1] / (arr.shape[1] * source[0]) - 1) > ASPECT_TOLERANCE:
        warnings.warn(
            f"{row.where}: saliency map {path} is {arr.shape[1]}x{arr.shape[0]} (W x H) but its image is "
            f"{source[1]}x{source[0]}; both are stretched to the stored size, so the map may not line up",
            DataWarning,
        )
    if arr.dtype == np.uint8:
        arr = arr / 255
    elif not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{row.where}: saliency map {path} must be float or uint8, got {arr.dtype}")
    values = arr.astype(np.float32)
    if not np.isfinite(values).all():
        raise DataError(f"{row.where}: saliency map {path} has non-finite values (NaN or Inf)")
    if values.min() < 0 or values.max() > 1:
        raise DataError(
            f"{row.where}: saliency map {path} has values in [{values.min()}, {values.max()}]; "
            "float maps must lie in [0, 1]"
        )
    resized = np.asarray(Image.fromarray(values).resize(shape[::-1], Image.BILINEAR))
    return np.clip(np.round(resized * 255), 0, 255).astype(np.uint8)


def _config(channels: int, size: int | None) -> SaliencyCsvConfig:
    """A predefined config named `<rgb|gray>_<size>`, or `<rgb|gray>_encoded` for size None."""
    kind = "rgb" if channels == 3 else "gray"
    if size is None:
        description = f"{kind}, encoded at full resolution (image as JPEG/PNG, map as PNG)"
        return SaliencyCsvConfig(name=f"{kind}_encoded", description=description, size=None, channels=channels)
    return SaliencyCsvConfig(name=f"{kind}_{size}", description=f"{size}x{size} {kind}", size=size, channels=channels)


class SaliencyCsv(OfflineBuilder):
    """Images, labels and human saliency maps listed in `<split>.csv` files."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "CSV layout image,label,saliency[,attack_type]."}
    # A build lives at data_dir/saliency_csv/<config name>/: give each user dataset its own data_dir
    # or config name, or build_dataset finds the earlier build and does not rebuild.
    BUILDER_CONFIGS = [_config(c, s) for s in (224, 32, None) for c in (3, 1)]
    DEFAULT_CONFIG_NAME = "rgb_224"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put `train.csv` (required) and any other `<split>.csv` in manual_dir (or set the config's "
        "csv_dir). Header: image,label,saliency[,attack_type]; paths relative to the CSV; an empty "
        "saliency field means the example has no map."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        if cfg.encoded:
            image = tfds.features.Image(shape=(None, None, cfg.channels), doc="the file's JPEG/PNG bytes, else PNG")
            saliency = tfds.features.Image(
                shape=(None, None, 1),
                encoding_format="png",
                doc="round(255·map) at the image's resolution; 1x1 zero if has_saliency is False",
            )
        else:
            image = tfds.features.Tensor(shape=(*cfg.shape, cfg.channels), dtype=np.uint8)
            saliency = tfds.features.Tensor(
                shape=cfg.shape, dtype=np.uint8, doc="round(255·map); zeros if has_saliency is False"
            )
        return tfds.core.DatasetInfo(
            builder=self,
            description="Images with labels and human saliency maps, read from CSV files.",
            features=tfds.features.FeaturesDict(
                {
                    "image": image,
                    "saliency": saliency,
                    "has_saliency": tfds.features.Scalar(dtype=np.bool_),
                    "label": tfds.features.ClassLabel(names=cfg.label_names),
                    "attack_type": tfds.features.ClassLabel(
                        doc=f"'{NO_ATTACK}' when the CSV gives none; names = all types in all splits"
                    ),
                }
            ),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(),
        )

    def _folder(self, manual_dir) -> pathlib.Path | None:
        cfg = self.builder_config
        folder = cfg.csv_dir or manual_dir
        return pathlib.Path(folder).expanduser() if folder else None

    def _read_csvs(self, folder: pathlib.Path) -> dict[str, list[CsvRow]]:
        return {path.stem: read_csv(path) for path in sorted(folder.glob("*.csv"))}

    def _carve(self, folder: pathlib.Path, csvs: dict[str, list[CsvRow]]) -> dict[str, list[CsvRow]]:
        """The splits of the CSVs, with `validation` carved from train when the config asks for it."""
        splits = dict(csvs)
        fraction = self.builder_config.validation_fraction
        if fraction and "validation" in splits:
            raise DataError(
                f"{folder} has a validation.csv and the config also carves validation_fraction={fraction} from "
                "train.csv; use one of the two"
            )
        if fraction and "train" in splits:
            splits["train"], splits["validation"] = carve_validation(
                splits["train"], fraction=fraction, seed=self.builder_config.validation_seed
            )
        return splits

    def _sources(self, folder: pathlib.Path, splits: dict[str, list[CsvRow]]) -> dict[str, str]:
        """Each CSV's contents, the sizes and times of the files it lists (and their bytes when they hold at most
        `sources.CONTENT_DIGEST_MAX_BYTES` in all), and the builder config (`splits` = the CSVs as read, before any
        carving)."""
        cfg = self.builder_config
        carve = (cfg.validation_fraction, cfg.validation_seed) if cfg.validation_fraction else ()
        out = {"builder config": repr((cfg.shape, cfg.channels, cfg.label_names) + carve)}
        for name, rows in splits.items():
            out[f"{name}.csv"] = sources.content_digest(folder / f"{name}.csv")
            files = [path for row in rows for path in (row.image, row.saliency) if path is not None]
            out[f"the files {name}.csv lists"] = sources.listing_digest(folder, files)
            contents = sources.contents_digest(folder, files)
            if contents is not None:
                out[f"{sources.CONTENTS}the files {name}.csv lists"] = contents
        return out

    def current_sources(self, manual_dir) -> dict[str, str] | None:
        folder = self._folder(manual_dir)
        return self._sources(folder, self._read_csvs(folder)) if folder else None

    def _split_generators(self, dl_manager):
        folder = self._folder(None) or pathlib.Path(dl_manager.manual_dir)
        csvs = self._read_csvs(folder)
        splits = self._carve(folder, csvs)
        if "train" not in splits:
            raise DataError(f"{folder}: no train.csv (found {sorted(splits)})")
        for name in splits:
            if not re.fullmatch(r"[A-Za-z_]\w*", name):
                raise DataError(f"{folder}/{name}.csv: split names must be identifiers ([A-Za-z_][A-Za-z0-9_]*)")
        cfg = self.builder_config
        label_names = list(cfg.label_names or sorted_labels(r.label for r in splits["train"]))
        source = "the config's label_names" if cfg.label_names else "train.csv"
        attacks = {r.attack_type for rows in splits.values() for r in rows} - {NO_ATTACK}
        for rows in splits.values():
            for row in rows:
                if row.label not in label_names:
                    raise DataError(f"{row.where}: label {row.label!r} does not occur in {source} ({label_names})")
                self._example(row)  # decodes and checks every file before anything is written
        warn_repeated_images(splits)
        if cfg.label_names is None:
            self.info.features["label"].names = label_names
        self.info.features["attack_type"].names = [NO_ATTACK, *sorted(attacks)]
        sources.record(self, self._sources(folder, csvs))
        return {name: self._generate_examples(rows) for name, rows in splits.items()}

    def _generate_examples(self, rows):
        rows = list(rows)
        with_maps = empty = 0
        for row in rows:
            example, mass = self._example(row)
            if row.saliency is not None:
                with_maps += 1
                empty += not mass
            yield row.line, example
        if with_maps and empty == with_maps:
            where = rows[0].where.rsplit(" row", 1)[0]
            warnings.warn(
                f"{where}: all {with_maps} saliency maps are empty (all zero): SAGE would train with no saliency; "
                "check the map files (a map drawn in an alpha channel is read only when its colour is uniform)",
                DataWarning,
            )

    def _example(self, row: CsvRow) -> tuple[dict, bool]:
        """The row's example, and whether its map has any mass."""
        cfg = self.builder_config
        if cfg.encoded:
            image, source = load_encoded(row, channels=cfg.channels)
            saliency = load_saliency(row, shape=source if row.saliency is not None else (1, 1), source=source)
            stored = png_bytes(saliency)
        else:
            image, source = load_image(row, shape=cfg.shape, channels=cfg.channels)
            saliency = stored = load_saliency(row, shape=cfg.shape, source=source)
        example = {
            "image": image,
            "saliency": stored,
            "has_saliency": row.saliency is not None,
            "label": row.label,
            "attack_type": row.attack_type,
        }
        return example, bool(saliency.any())
