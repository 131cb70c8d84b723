"""config.json: a rerun under another config keeps the earlier one as config.1.json; keys added to configs since
(with their defaults) do not count as a change."""

import json

import ml_collections

from sagejax import configs
from sagejax.train.run_info import write_run_info


def test_an_earlier_config_is_kept_only_when_it_differs(tmp_path):
    config = configs.load("sage_decoy:sage")
    old = config.to_dict()
    del old["mesh"]["num_devices"], old["optim"]["accumulate_steps"]  # as a run saved before the keys existed
    (tmp_path / "config.json").write_text(json.dumps({"config": old}, default=list))
    write_run_info(str(tmp_path), config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    longer = ml_collections.ConfigDict(config.to_dict())
    longer.train.steps = 800
    write_run_info(str(tmp_path), longer)
    assert json.loads((tmp_path / "config.1.json").read_text())["config"]["train"]["steps"] == 400
    assert json.loads((tmp_path / "config.json").read_text())["config"]["train"]["steps"] == 800
