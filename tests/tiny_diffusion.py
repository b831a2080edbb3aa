"""Tiny random diffusion models in the shipped models' formats, for tests (diffusers'
`get_dummy_components` style): a Stable-Diffusion folder with the shapes model's scheduler
settings (v-prediction, zero terminal SNR, trailing timesteps) and an InstructPix2Pix folder,
64 x 64 pixels over 4 x 8 x 8 latents, loaded through the normal loading path."""
from __future__ import annotations

from pathlib import Path

import torch

SIZE = 64
CONTEXT_LENGTH = 16
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
    steps_offset=1, algorithm_type="dpmsolver++", final_sigmas_type="zero",
)
WORDS = ("a an the and at in on of to make turn circle square triangle red green blue yellow "
         "purple cyan small large top bottom left right center background gray white black").split()


def tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    from training.tokenizer import write_tokenizer

    write_tokenizer(folder, list(WORDS), CONTEXT_LENGTH)
    return CLIPTokenizer.from_pretrained(folder)


def components(folder: Path, unet_in_channels: int = 4, gligen: bool = False) -> dict:
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tok = tokenizer(folder / "tokenizer-source")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=CONTEXT_LENGTH, projection_dim=32,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id)).eval()
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 8, 8, 8), norm_num_groups=4, sample_size=SIZE,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 8, in_channels=unet_in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4, cross_attention_dim=32,
        attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        **({"attention_type": "gated"} if gligen else {}))
    scheduler = DPMSolverMultistepScheduler(**SCHEDULER_CONFIG)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, scheduler=scheduler,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def write_models(root: Path) -> dict[str, Path]:
    """Save tiny `base`, `edit` and `gligen` pipeline folders under `root`."""
    from diffusers import (StableDiffusionGLIGENPipeline, StableDiffusionInstructPix2PixPipeline,
                           StableDiffusionPipeline)

    root = Path(root)
    paths = {"base": root / "tiny-sd", "edit": root / "tiny-ip2p", "gligen": root / "tiny-gligen"}
    StableDiffusionPipeline(**components(root)).save_pretrained(paths["base"])
    StableDiffusionInstructPix2PixPipeline(**components(root, unet_in_channels=8)).save_pretrained(
        paths["edit"])
    StableDiffusionGLIGENPipeline(**components(root, gligen=True)).save_pretrained(paths["gligen"])
    return paths


def write_shipped_layout(root: Path) -> Path:
    """Tiny text-to-image and edit folders named as the shipped models are; returns `root`."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    root = Path(root)
    StableDiffusionPipeline(**components(root)).save_pretrained(root / "shapes-sd")
    StableDiffusionInstructPix2PixPipeline(**components(root, unet_in_channels=8)).save_pretrained(
        root / "shapes-ip2p")
    return root


def write_ip_adapter(root: Path, unet) -> Path:
    """A tiny IP-Adapter for `unet`, laid out like h94/IP-Adapter: models/image_encoder/ and
    models/ip-adapter.safetensors (image projection + a key/value pair per cross-attention)."""
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    folder = Path(root) / "tiny-ip-adapter"
    embed_dim, cross = 16, unet.config.cross_attention_dim
    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=embed_dim)).save_pretrained(
        folder / "models" / "image_encoder")
    tensors = {"image_proj.proj.weight": torch.randn(4 * cross, embed_dim) * 0.1,
               "image_proj.proj.bias": torch.zeros(4 * cross),
               "image_proj.norm.weight": torch.ones(cross),
               "image_proj.norm.bias": torch.zeros(cross)}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        channels = unet.config.block_out_channels
        if name.startswith("mid_block"):
            hidden = channels[-1]
        else:
            block = int(name.split(".")[1])
            hidden = (channels[::-1] if name.startswith("up_blocks") else channels)[block]
        for kind in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key_id}.{kind}.weight"] = torch.randn(hidden, cross) * 0.1
        key_id += 2
    save_file(tensors, folder / "models" / "ip-adapter.safetensors")
    return folder
