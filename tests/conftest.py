"""Fixtures shared by test files."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: more torch threads only contend with whatever else the machine runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random diffusers models saved under the shipped names (shapes-sd, shapes-ip2p), so
    ATELIER_MODELS and ModelConfig.shipped find them."""
    import tiny_diffusion

    return tiny_diffusion.write_shipped_layout(tmp_path_factory.mktemp("models"))
