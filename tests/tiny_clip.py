"""A tiny shapes-clip for tests: the shipped model's open_clip config and tokenizer (written by
training.clip.prepare_folder) with seeded random weights, in a models folder laid out like
the shipped one, so `Embedder.shipped(folder)` and ATELIER_MODELS load it the normal way."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_models(root: Path, seed: int = 0) -> Path:
    """`root/shapes-clip` with config, tokenizer and weights; returns `root`."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from training.clip import prepare_folder

    folder = Path(root) / "shapes-clip"
    prepare_folder(folder)
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(folder / "open_clip_model.safetensors"))
    return Path(root)


def shared_models(tmp_path_factory) -> Path:
    """One tiny model per test session, whichever test module asks first."""
    root = tmp_path_factory.getbasetemp() / "tiny-clip-models"
    if not (root / "shapes-clip" / "open_clip_model.safetensors").is_file():
        write_models(root)
    return root
