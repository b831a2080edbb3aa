"""Seeing and steering the UNet's attention maps (layout guidance, prompt-to-prompt).

`hooked_attention(unet, hook)` swaps in processors that compute the attention probabilities
explicitly and pass them through `hook(name, probs, is_cross)`, which may record them or
return replacements; the UNet's own processors come back on exit, since every operation
shares the UNet.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch

# hook(layer name, probabilities (batch, heads, queries, keys), is cross-attention) -> probs
AttentionHook = Callable[[str, torch.Tensor, bool], torch.Tensor]


class HookedAttnProcessor:
    """diffusers' plain `AttnProcessor`, with the probabilities handed to a hook."""

    def __init__(self, name: str, hook: AttentionHook):
        self.name = name
        self.hook = hook

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs):
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        is_cross = encoder_hidden_states is not None
        context = encoder_hidden_states if is_cross else hidden_states
        batch_size, sequence_length, _ = context.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if not is_cross:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        query = attn.head_to_batch_dim(query)

        probs = attn.get_attention_scores(query, key, attention_mask)
        probs = probs.view(batch_size, attn.heads, *probs.shape[1:])
        probs = self.hook(self.name, probs, is_cross).flatten(0, 1)

        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height,
                                                                    width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextmanager
def hooked_attention(unet, hook: AttentionHook):
    original = dict(unet.attn_processors)
    # set_attn_processor consumes the dict it is given, hence the copies.
    unet.set_attn_processor({name: HookedAttnProcessor(name, hook) for name in original})
    try:
        yield
    finally:
        unet.set_attn_processor(dict(original))


def map_shape(queries: int, height: int, width: int) -> tuple[int, int]:
    """The (h, w) grid of a layer's `queries` for a latent of `height` x `width`."""
    factor = round((height * width / queries) ** 0.5)
    return height // factor, width // factor


def token_span(tokenizer, text: str) -> list[int]:
    """Positions of `text`'s own tokens in its encoded prompt (after the start token)."""
    ids = tokenizer(text, truncation=True, max_length=tokenizer.model_max_length).input_ids
    return list(range(1, len(ids) - 1))
