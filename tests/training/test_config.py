"""`TrainConfig`'s own rules: what it refuses and the defaults it resolves."""

import pytest

from socratic.core.errors import SocraticError
from socratic.training.config import TrainConfig


def test_the_rows_of_a_pass_divide_the_batch_and_default_to_one_on_a_cpu():
    with pytest.raises(SocraticError, match=r"--micro-batch: must divide --batch-size \(4\), not 3"):
        TrainConfig(batch_size=4, micro_batch=3)
    assert TrainConfig(batch_size=4).rows_per_pass(gpu=False) == 1
    assert TrainConfig(batch_size=4).rows_per_pass(gpu=True) == 4
    assert TrainConfig(batch_size=4, micro_batch=2).rows_per_pass(gpu=False) == 2
