"""Multi-process start-up from the environment: coordinator variables without the switch are refused."""

import pytest

from sagejax.errors import ConfigError
from sagejax.train import distributed


def test_coordinator_variables_without_the_switch_are_refused():
    assert distributed.initialize_from_env({}) is False
    full = {"SAGEJAX_COORDINATOR_ADDRESS": "localhost:1", "SAGEJAX_NUM_PROCESSES": "2", "SAGEJAX_PROCESS_ID": "0"}
    with pytest.raises(
        ConfigError, match="SAGEJAX_NUM_PROCESSES, SAGEJAX_PROCESS_ID set but not SAGEJAX_DISTRIBUTED=1"
    ):
        distributed.initialize_from_env(full)
    with pytest.raises(ConfigError, match="SAGEJAX_PROCESS_ID set but not SAGEJAX_DISTRIBUTED=1"):
        distributed.initialize_from_env({"SAGEJAX_PROCESS_ID": "1", "SAGEJAX_DISTRIBUTED": "0"})


def test_distributed_settings_errors_name_what_is_missing():
    assert distributed.initialize_from_env({}) is False
    with pytest.raises(ConfigError, match="SAGEJAX_NUM_PROCESSES, SAGEJAX_PROCESS_ID missing"):
        distributed.explicit_arguments({"SAGEJAX_COORDINATOR_ADDRESS": "localhost:1"})
    full = {"SAGEJAX_COORDINATOR_ADDRESS": "localhost:1", "SAGEJAX_NUM_PROCESSES": "2", "SAGEJAX_PROCESS_ID": "2"}
    with pytest.raises(ConfigError, match="SAGEJAX_PROCESS_ID=2 must be in"):
        distributed.explicit_arguments(full)
    with pytest.raises(ConfigError, match="must be host:port"):
        distributed.explicit_arguments({**full, "SAGEJAX_PROCESS_ID": "0", "SAGEJAX_COORDINATOR_ADDRESS": "nohost"})
    assert distributed.explicit_arguments({**full, "SAGEJAX_PROCESS_ID": "1"}) == dict(
        coordinator_address="localhost:1", num_processes=2, process_id=1
    )
