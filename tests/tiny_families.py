"""Tiny random pipelines of every family a diffusers user brings, built in-process from configs
(diffusers' own `get_dummy_components`, but with tokenizers made here: no hub): SD 1.x
(tests/tiny_diffusion.py), SDXL (two CLIP encoders, added time ids), SD3 (an MMDiT over three
encoders, flow matching) and FLUX (a guidance-distilled transformer over CLIP and T5, packed
latents). Each is saved with save_pretrained and loaded back through the normal loading path."""
from __future__ import annotations

from pathlib import Path

import torch

import tiny_diffusion

FAMILIES = ("sd", "sdxl", "sd3", "flux")
T5_WORDS = tiny_diffusion.WORDS
T5_LENGTH = 16


def clip_tokenizer(folder: Path):
    return tiny_diffusion.tokenizer(folder)


def t5_tokenizer():
    """A T5 tokenizer (sentencepiece-style unigram over the tiny word list) made from a
    `tokenizers` object, which T5TokenizerFast saves and loads without sentencepiece."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(f"\u2581{w}", -1.0) for w in T5_WORDS]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    return T5TokenizerFast(tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>",
                           pad_token="<pad>", extra_ids=0, model_max_length=T5_LENGTH)


def _clip_config(tok, **extra):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37,
                          num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=tiny_diffusion.CONTEXT_LENGTH, projection_dim=32,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **extra)


def _t5(tok):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                   num_heads=4, pad_token_id=tok.pad_token_id,
                                   eos_token_id=tok.eos_token_id)).eval()


def _flow_vae(latent_channels: int):
    from diffusers import AutoencoderKL

    return AutoencoderKL(sample_size=64, in_channels=3, out_channels=3, block_out_channels=(8, 8),
                         layers_per_block=1, latent_channels=latent_channels, norm_num_groups=4,
                         use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
                         scaling_factor=1.5035, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2)


def sdxl(folder: Path, unet_in_channels: int = 4):
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler,
                           StableDiffusionXLInstructPix2PixPipeline, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    tok = clip_tokenizer(folder / "tokenizer-source")
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=unet_in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1), projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                        block_out_channels=(8, 8, 8, 8), norm_num_groups=4, sample_size=64,
                        down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    parts = dict(vae=vae, unet=unet, scheduler=scheduler, tokenizer=tok, tokenizer_2=tok,
                 text_encoder=CLIPTextModel(_clip_config(tok)).eval(),
                 text_encoder_2=CLIPTextModelWithProjection(_clip_config(tok)).eval())
    if unet_in_channels == 8:
        return StableDiffusionXLInstructPix2PixPipeline(**parts)
    return StableDiffusionXLPipeline(**parts)


def sd3(folder: Path):
    from diffusers import (FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                           StableDiffusion3Pipeline)
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(0)
    tok = clip_tokenizer(folder / "tokenizer-source")
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=2, in_channels=16, num_layers=1, attention_head_dim=8,
        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=32,
        pooled_projection_dim=64, out_channels=16)
    # 16 latent channels as SD3's own autoencoder has: its inpainting pipeline takes no other.
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=_flow_vae(16),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=CLIPTextModelWithProjection(_clip_config(tok)).eval(), tokenizer=tok,
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(tok)).eval(), tokenizer_2=tok,
        text_encoder_3=_t5(t5_tokenizer()), tokenizer_3=t5_tokenizer())


def flux(folder: Path, guidance_embeds: bool = True):
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    tok = clip_tokenizer(folder / "tokenizer-source")
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8], guidance_embeds=guidance_embeds)
    t5 = t5_tokenizer()
    return FluxPipeline(
        transformer=transformer, vae=_flow_vae(4),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True,
                                                  base_shift=0.5, max_shift=1.15),
        text_encoder=CLIPTextModel(_clip_config(tok)).eval(), tokenizer=tok,
        text_encoder_2=_t5(t5), tokenizer_2=t5)


def write(family: str, root: Path) -> Path:
    """Save a tiny pipeline of `family` under `root` and return its folder."""
    root = Path(root)
    folder = root / f"tiny-{family}"
    if family == "sd":
        from diffusers import StableDiffusionPipeline

        StableDiffusionPipeline(**tiny_diffusion.components(root)).save_pretrained(folder)
        return folder
    {"sdxl": sdxl, "sd3": sd3, "flux": flux}[family](root).save_pretrained(folder)
    return folder
