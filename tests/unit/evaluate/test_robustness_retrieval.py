"""Robustness and retrieval: retrieval metrics against scikit-learn and NumPy, corruption error against its
definition, the two evaluators against an unsharded computation on a tiny dataset, their bad settings, and the
`sagejax.tools.robustness` / `sagejax.tools.retrieval` commands on a trained run."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score

from sagejax import augment, data, methods, runs
from sagejax.configs import common, sage_csv, student
from sagejax.errors import ConfigError, DataError, MissingError
from sagejax.evaluate import corruption_error, probes, retrieval_metrics
from sagejax.evaluate.evaluators import make_evaluators
from sagejax.train import init_state, make_mesh
from sagejax.train.state import merge_model

# ----------------------------------------------------------------------------- retrieval metrics


def _reference(queries, query_labels, database, database_labels, ks):
    """Per query with NumPy loops and scikit-learn's AP; the 11-point curve as max precision at recall >= r."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = database / np.linalg.norm(database, axis=1, keepdims=True)
    rows = []
    for i in range(len(q)):
        relevant = database_labels == query_labels[i]
        if not relevant.any():
            continue
        scores = d @ q[i]
        ranked = relevant[np.argsort(-scores, kind="stable")]
        hits = np.cumsum(ranked)
        precision, recall = hits / np.arange(1, len(d) + 1), hits / relevant.sum()
        curve = [precision[recall >= r - 1e-9].max() for r in retrieval_metrics.RECALL_LEVELS]
        rows.append(
            [average_precision_score(relevant, scores), hits[relevant.sum() - 1] / relevant.sum()]
            + [hits[k - 1] / k for k in ks]
            + curve
        )
    return np.array(rows).mean(0)


def test_retrieval_metrics_match_sklearn_and_numpy():
    rng = np.random.default_rng(0)
    database, database_labels = rng.normal(size=(53, 6)), rng.integers(0, 4, 53)
    queries, query_labels = rng.normal(size=(37, 6)), rng.integers(0, 4, 37)
    query_labels[:3] = 4  # a class without database items
    ks = (1, 5, 53)
    got = retrieval_metrics.retrieval_metrics(queries, query_labels, database, database_labels, ks=ks, chunk_size=5)
    expected = _reference(queries, query_labels, database, database_labels, ks)
    names = ["mAP", "r_precision", *(f"precision@{k}" for k in ks)]
    names += [f"precision@recall={r:.1f}" for r in retrieval_metrics.RECALL_LEVELS]
    np.testing.assert_allclose([got[n] for n in names], expected, rtol=1e-5)
    assert got["queries"] == 34 and got["queries_without_relevant"] == 3
    assert got["precision@53"] == pytest.approx(np.mean(np.bincount(database_labels)[query_labels[3:]] / 53))


def test_retrieval_of_identical_embeddings_per_class_is_perfect():
    labels = np.repeat(np.arange(3), 4)
    embeddings = np.eye(3)[labels] + 1e-3 * np.random.default_rng(1).normal(size=(12, 3))
    got = retrieval_metrics.retrieval_metrics(embeddings, labels, embeddings, labels, ks=(4,))
    assert got["mAP"] == pytest.approx(1.0) and got["precision@4"] == 1.0 and got["r_precision"] == 1.0
    assert got["precision@recall=1.0"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.__setitem__("queries", np.zeros((4, 5))), r"differ in size"),
        (lambda a: a["queries"].__setitem__(1, 0.0), r"1 embedding\(s\) are zero or not finite \(first at row 1\)"),
        (lambda a: a["database"].__setitem__(2, np.nan), r"first at row 2"),
        (lambda a: a.__setitem__("query_labels", np.array([7, 7, 7, 7])), r"no query has a relevant"),
        (lambda a: a.__setitem__("database_labels", np.zeros(3, int)), r"one label"),
    ],
)
def test_retrieval_bad_input_is_named(change, message):
    rng = np.random.default_rng(2)
    args = dict(
        queries=rng.normal(size=(4, 3)),
        query_labels=np.array([0, 1, 0, 1]),
        database=rng.normal(size=(6, 3)),
        database_labels=np.array([0, 1, 0, 1, 0, 1]),
    )
    change(args)
    with pytest.raises(DataError, match=message):
        retrieval_metrics.retrieval_metrics(**args)


# ----------------------------------------------------------------------------- corruption error


def _robustness_metrics(clean, errors):
    metrics = {"test/clean/accuracy": clean}
    for name, per_severity in errors.items():
        for s, e in enumerate(per_severity, 1):
            metrics[f"test/{name}/{s}/accuracy"] = 1 - e
        metrics[f"test/{name}/accuracy"] = 1 - np.mean(per_severity)
    return metrics


def test_corruption_error_follows_its_definition():
    run = _robustness_metrics(0.9, {"fog": [0.2, 0.3], "snow": [0.4, 0.6]})
    base = _robustness_metrics(0.8, {"fog": [0.4, 0.6], "snow": [0.5, 0.5]})
    got = corruption_error.corruption_errors(run, base, split="test", names=["fog", "snow"])
    assert got["CE/fog"] == pytest.approx(0.5 / 1.0) and got["CE/snow"] == pytest.approx(1.0)
    assert got["relative_CE/fog"] == pytest.approx((0.1 + 0.2) / (0.2 + 0.4))
    assert got["mCE"] == pytest.approx(0.75)
    assert got["relative_mCE"] == pytest.approx(np.mean([0.3 / 0.6, (0.3 + 0.5) / (0.3 + 0.3)]))
    mnist = {"test/clean/accuracy": 0.9, "test/shear/accuracy": 0.7}
    assert corruption_error.errors_by_corruption(mnist, "test") == {"shear": pytest.approx(np.array([0.3]))}
    with pytest.raises(DataError, match="the baseline has no test errors for 'rain'"):
        corruption_error.corruption_errors(run, base, split="test", names=["rain"])
    perfect = _robustness_metrics(1.0, {"fog": [0.0, 0.0]})
    with pytest.raises(DataError, match="makes no error on 'fog'"):
        corruption_error.corruption_errors(run, perfect, split="test", names=["fog"])


# ----------------------------------------------------------------------------- the evaluators


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    """16 train and 16 test 32×32 RGB images, two labels, a class-dependent brightness so models can learn."""
    root = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        lines = ["image,label,saliency"]
        for i in range(16):
            image = rng.integers(0, 128, (32, 32, 3)) + 100 * (i % 2)
            Image.fromarray(image.astype(np.uint8)).save(root / f"{split}{i}.png")
            lines.append(f"{split}{i}.png,{('a', 'b')[i % 2]},")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """Where the tests' configs build the CSV dataset, once for the module."""
    return tmp_path_factory.mktemp("tfds")


def _config(csv_dir, tfds_dir, evals):
    config = sage_csv.get_config("xent,resnet18_32")
    config.data.update(manual_dir=str(csv_dir), data_dir=str(tfds_dir), augment="")
    config.model = common.model("vit_tiny")  # 2 blocks of width 32: quick to compile for each corruption
    config.evals = {name: common.evaluator(kind, **settings) for name, (kind, settings) in evals.items()}
    return config


def _evaluator(config, devices, name, predict=methods.classify):
    mesh = make_mesh({"data": 8}, devices=devices)
    setup = init_state(config, optax.sgd(0.1), mesh)
    evaluator = make_evaluators(config, graphdef=setup.graphdef, mesh=mesh, predict=predict)[name]
    return evaluator, setup


def _pixel_classifier(model, batch, config):
    """Class b when the top-left pixel is brighter than the classes' midpoint: right on most clean test images,
    changed by the corruptions (a random network here would predict one class for every image)."""
    del model, config
    margin = batch["image"][:, 0, 0, 0] - 114.5 / 255  # between two pixel levels: no tie to round either way
    return {"logits": jnp.stack([-margin, margin], axis=-1)}


def _split(config, name, split):
    """The whole split in one host batch (images uint8, labels)."""
    config = config.copy_and_resolve_references()
    config.evals[name].batch_size = 16
    (batch,) = list(data.eval_iter(config, name, split))
    return batch["image"], batch["label"]


def _embed(setup, state, images) -> np.ndarray:
    """The unsharded, whole-split embeddings of uint8 `images`."""

    @jax.jit
    def embed(params, model_state, images):
        model = merge_model(setup.graphdef, params, model_state)
        model.eval()
        return methods.classify(model, data.to_model_inputs({"image": images}), None)["embedding"]

    return np.asarray(embed(state.params, state.model_state, jnp.asarray(images)))


def test_robustness_evaluator_equals_corrupting_the_whole_split_at_once(csv_dir, tfds_dir, devices):
    settings = dict(
        splits=("test",), batch_size=8, corruptions=("gaussian_noise", "jpeg_compression"), severities=(1, 5)
    )
    config = _config(csv_dir, tfds_dir, {"robustness": ("robustness", settings)})
    evaluator, setup = _evaluator(config, devices, "robustness", predict=_pixel_classifier)
    metrics, _ = evaluator.run(setup.init())
    images, labels = _split(config, "robustness", "test")

    def accuracy(images):
        logits = _pixel_classifier(None, data.to_model_inputs({"image": jnp.asarray(images)}), None)["logits"]
        return float(np.mean(np.argmax(logits, -1) == labels))

    expected = {"test/clean/accuracy": accuracy(images)}
    for name in ("gaussian_noise", "jpeg_compression"):
        for severity in (1, 5):
            corrupted = augment.corrupt_examples(
                jnp.asarray(images), name=name, severity=severity, table="cifar", seed=0, indices=jnp.arange(16)
            )
            expected[f"test/{name}/{severity}/accuracy"] = accuracy(corrupted)
        expected[f"test/{name}/accuracy"] = np.mean([expected[f"test/{name}/{s}/accuracy"] for s in (1, 5)])
    expected["test/main/accuracy"] = np.mean(
        [expected[f"test/{n}/accuracy"] for n in ("gaussian_noise", "jpeg_compression")]
    )
    assert metrics == pytest.approx(expected)
    assert min(expected.values()) < expected["test/clean/accuracy"], expected  # the corruptions change answers


def _pixel_features(model, batch, config):
    """The top-left pixel's channels as the embedding: a linear probe on them mostly separates the two classes."""
    del model, config
    return {"embedding": batch["image"][:, 0, 0, :]}


def test_robustness_probe_is_fit_on_clean_train_features_and_scores_corrupted_test(csv_dir, tfds_dir, devices):
    settings = dict(
        splits=("test",),
        batch_size=8,
        corruptions=("gaussian_noise",),
        severities=(5,),
        classifier="logistic_probe",
        probe_split="train",
        logistic_l2s=(1e-4, 1e-2),
        logistic_steps=20,
    )
    config = _config(csv_dir, tfds_dir, {"robustness": ("robustness", settings)})
    evaluator, setup = _evaluator(config, devices, "robustness", predict=_pixel_features)
    metrics, _ = evaluator.run(setup.init())

    def features(images):
        inputs = data.to_model_inputs({"image": jnp.asarray(images)})
        return np.asarray(_pixel_features(None, inputs, None)["embedding"], np.float64)

    train_images, train_labels = _split(config, "robustness", "train")
    standardize = probes.Standardizer(features(train_images))
    x = standardize(features(train_images))
    fit, held = probes.holdout_split(train_labels, fraction=0.2, seed=config.seed)
    kwargs = dict(num_classes=2, steps=20)
    l2 = probes.choose_logistic_l2(x[fit], train_labels[fit], x[held], train_labels[held], l2s=(1e-4, 1e-2), **kwargs)
    params = probes.logistic_fit(x, train_labels, l2=l2, **kwargs)
    images, labels = _split(config, "robustness", "test")
    noisy = augment.corrupt_examples(
        jnp.asarray(images), name="gaussian_noise", severity=5, table="cifar", seed=0, indices=jnp.arange(16)
    )

    def accuracy(images):
        return float(np.mean(probes.logistic_predict(params, standardize(features(images))) == labels))

    assert metrics["probe/logistic_l2"] == l2
    assert metrics["test/clean/accuracy"] == pytest.approx(accuracy(images)) and accuracy(images) >= 0.75
    assert metrics["test/gaussian_noise/5/accuracy"] == pytest.approx(accuracy(noisy))
    assert metrics["test/gaussian_noise/5/accuracy"] < metrics["test/clean/accuracy"]


def test_student_robust_variant_adds_the_probe_sweep_and_retrieval_of_validation():
    config = student.get_config("simclr,robust")
    assert config.evals.robustness.classifier == "logistic_probe" and config.evals.robustness.probe_split == "train"
    assert config.evals.robustness.splits == ("validation",) and config.evals.retrieval.database_split == "train"
    assert "robustness" not in student.get_config("simclr").evals


def test_retrieval_evaluator_equals_ranking_the_embeddings(csv_dir, tfds_dir, devices):
    settings = dict(splits=("test",), batch_size=8, ks=(1, 8), query_corruptions=("gaussian_noise/5",))
    config = _config(csv_dir, tfds_dir, {"retrieval": ("retrieval", settings)})
    evaluator, setup = _evaluator(config, devices, "retrieval")
    state = setup.init()
    metrics, _ = evaluator.run(state)
    (queries, query_labels), (database, database_labels) = (
        _split(config, "retrieval", split) for split in ("test", "train")
    )
    embed = functools.partial(_embed, setup, state)
    expected = retrieval_metrics.retrieval_metrics(
        embed(queries), query_labels, embed(database), database_labels, ks=(1, 8)
    )
    assert {k: v for k, v in metrics.items() if "gaussian" not in k} == pytest.approx(
        {f"test/{k}": v for k, v in expected.items()}, rel=1e-5
    )
    noisy = augment.corrupt_examples(jnp.asarray(queries), name="gaussian_noise", severity=5, indices=jnp.arange(16))
    corrupted = retrieval_metrics.retrieval_metrics(
        embed(noisy), query_labels, embed(database), database_labels, ks=(1, 8)
    )
    assert metrics["test/gaussian_noise/5/mAP"] == pytest.approx(corrupted["mAP"], rel=1e-5)
    assert metrics["test/gaussian_noise/5/mAP"] != metrics["test/mAP"]


@pytest.mark.parametrize(
    "kind, settings, message",
    [
        ("robustness", dict(corruptions=("rain",)), r"config.evals.bad: unknown cifar corruption 'rain'"),
        ("robustness", dict(severities=(0, 6)), r"severity must be an integer in 1..5, got 0"),
        ("robustness", dict(severities=()), r"config.evals.bad.severities is empty"),
        ("robustness", dict(table="tiny"), r"config.evals.bad.table='tiny' is not a corruption table"),
        ("robustness", dict(corruptions=("shear",)), r"an MNIST-C corruption: pass table='mnist'"),
        ("robustness", dict(classifier="knn"), r"config.evals.bad.classifier='knn' is not one of"),
        ("robustness", dict(classifier="logistic_probe", probe_split="gallery"), r"probe_split 'gallery' is not"),
        ("robustness", dict(classifier="logistic_probe", probe_split="test"), r"probe_split 'test' is also evaluated"),
        ("retrieval", dict(query_corruptions=("fog/x",)), r"'fog/x' is not 'name/severity'"),
        ("retrieval", dict(query_corruptions=("shear/2",), table="mnist"), r"one fixed severity"),
        ("retrieval", dict(database_split="gallery"), r"database_split 'gallery' is not a split"),
        ("retrieval", dict(chunk_size=0), r"chunk_size and every k of ks must be >= 1"),
    ],
)
def test_bad_evaluator_settings_are_named(csv_dir, tfds_dir, devices, kind, settings, message):
    config = _config(csv_dir, tfds_dir, {"bad": (kind, dict(batch_size=8, **settings))})
    with pytest.raises(ConfigError, match=message):
        _evaluator(config, devices, "bad")


def test_runs_are_found_and_grouped(tmp_path):
    for run in ("sage/seed0", "sage/seed1", "xent/seed0"):
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "config.json").write_text("{}")
    groups = runs.group_runs([str(tmp_path / "sage"), str(tmp_path / "xent" / "seed*")])
    assert groups == {
        "sage": [str(tmp_path / "sage" / s) for s in ("seed0", "seed1")],
        "seed0": [str(tmp_path / "xent" / "seed0")],
    }
    with pytest.raises(MissingError, match="neither a sagejax.main run"):
        runs.group_runs([str(tmp_path / "nothing")])


# ----------------------------------------------------------------------------- the commands
