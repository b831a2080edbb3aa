"""Fixtures shared by test files."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny random diffusers models saved under the shipped names (shapes-sd, shapes-ip2p), so
    ATELIER_MODELS and ModelConfig.shipped find them."""
    import tiny_diffusion

    return tiny_diffusion.write_shipped_layout(tmp_path_factory.mktemp("models"))
