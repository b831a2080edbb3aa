"""open_clip text tower -> transformers CLIPTextModel, so Stable-Diffusion-format folders can
condition on the shapes CLIP's contrastively trained text encoder."""
from __future__ import annotations

import torch
from transformers import CLIPTextConfig, CLIPTextModel


def clip_text_model_from_open_clip(model, tokenizer) -> CLIPTextModel:
    """Same weights, same outputs: open_clip fuses q, k, v into one in-projection; transformers
    keeps them apart."""
    text = model.transformer
    width = model.token_embedding.weight.shape[1]
    config = CLIPTextConfig(
        vocab_size=model.token_embedding.weight.shape[0],
        hidden_size=width,
        intermediate_size=text.resblocks[0].mlp.c_fc.out_features,
        num_hidden_layers=len(text.resblocks),
        num_attention_heads=text.resblocks[0].attn.num_heads,
        max_position_embeddings=model.positional_embedding.shape[0],
        hidden_act="gelu",
        layer_norm_eps=model.ln_final.eps,
        projection_dim=model.text_projection.shape[1],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    hf = CLIPTextModel(config).eval()
    state = {
        "embeddings.token_embedding.weight": model.token_embedding.weight,
        "embeddings.position_embedding.weight": model.positional_embedding,
        "final_layer_norm.weight": model.ln_final.weight,
        "final_layer_norm.bias": model.ln_final.bias,
    }
    for i, block in enumerate(text.resblocks):
        prefix = f"encoder.layers.{i}."
        q, k, v = block.attn.in_proj_weight.chunk(3)
        qb, kb, vb = block.attn.in_proj_bias.chunk(3)
        state.update({
            prefix + "self_attn.q_proj.weight": q, prefix + "self_attn.q_proj.bias": qb,
            prefix + "self_attn.k_proj.weight": k, prefix + "self_attn.k_proj.bias": kb,
            prefix + "self_attn.v_proj.weight": v, prefix + "self_attn.v_proj.bias": vb,
            prefix + "self_attn.out_proj.weight": block.attn.out_proj.weight,
            prefix + "self_attn.out_proj.bias": block.attn.out_proj.bias,
            prefix + "layer_norm1.weight": block.ln_1.weight, prefix + "layer_norm1.bias": block.ln_1.bias,
            prefix + "layer_norm2.weight": block.ln_2.weight, prefix + "layer_norm2.bias": block.ln_2.bias,
            prefix + "mlp.fc1.weight": block.mlp.c_fc.weight, prefix + "mlp.fc1.bias": block.mlp.c_fc.bias,
            prefix + "mlp.fc2.weight": block.mlp.c_proj.weight, prefix + "mlp.fc2.bias": block.mlp.c_proj.bias,
        })
    missing, unexpected = hf.load_state_dict(
        {k: v.detach().float() for k, v in state.items()}, strict=False)
    # Only the buffer of position ids is transformers' own.
    assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
    return hf


@torch.no_grad()
def max_hidden_difference(model, hf: CLIPTextModel, input_ids: torch.Tensor) -> float:
    """Largest gap between the two towers' final token states (a conversion check)."""
    x = model.token_embedding(input_ids) + model.positional_embedding
    x = model.transformer(x, attn_mask=model.attn_mask)
    reference = model.ln_final(x)
    return (hf(input_ids).last_hidden_state - reference).abs().max().item()
