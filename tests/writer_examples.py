"""A small dataset for the TFDS writer's tests, a function of the example index only, so that two processes
write the same bytes."""

import numpy as np
import tensorflow_datasets as tfds

from sagejax.data import tfds_writer as tw

NAME = "labeled"
FEATURES = tfds.features.FeaturesDict(
    {
        "image": tfds.features.Tensor(shape=(8, 8, 3), dtype=np.uint8),
        "saliency": tfds.features.Tensor(shape=(8, 8), dtype=np.uint8),
        "image_id": tfds.features.Text(),
        "label": tfds.features.ClassLabel(num_classes=3),
        "score": tfds.features.Scalar(dtype=np.float32),
    }
)


def examples(num: int) -> list[dict]:
    """`num` distinct examples of FEATURES, a function of their index only."""
    rng = np.random.default_rng(0)
    return [
        {
            "image": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
            "saliency": rng.integers(0, 256, (8, 8), dtype=np.uint8),
            "image_id": f"img_{i:03d}",
            "label": i % 3,
            "score": np.float32(i / 7),
        }
        for i in range(num)
    ]


def write_split(output_dir: str, examples: list[dict], *, split: str = "train", num_shards: int = 3) -> None:
    """Writes `examples` as `split` of NAME in num_shards shards, then its metadata."""
    lengths = []
    for shard, (start, stop) in enumerate(tw.shard_ranges(num_examples=len(examples), num_shards=num_shards)):
        path = tw.shard_path(output_dir=output_dir, dataset_name=NAME, split=split, shard=shard, num_shards=num_shards)
        lengths.append(tw.write_shard(path=path, records=(tw.serialize(FEATURES, ex) for ex in examples[start:stop])))
    tw.write_metadata(
        output_dir=output_dir,
        dataset_name=NAME,
        features=FEATURES,
        split=split,
        shard_lengths=lengths,
        description="test labels",
        supervised_keys=("image", "label"),
    )
