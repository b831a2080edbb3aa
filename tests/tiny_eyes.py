"""Tiny random eyes for tests, saved as the real formats: an OWL-ViT detector that
`transformers.pipeline("zero-shot-object-detection", model=PATH)` loads, and a SAM segmenter
(SamModel / SamProcessor). Their tokenizer is the shipped shapes-clip's CLIP tokenizer."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_detector(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (CLIPTokenizerFast, OwlViTConfig, OwlViTForObjectDetection,
                              OwlViTImageProcessor, OwlViTProcessor)

    tokenizer = CLIPTokenizerFast.from_pretrained(REPO / "models" / "shapes-clip")
    config = OwlViTConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=64, patch_size=16),
        projection_dim=32)
    torch.manual_seed(seed)
    model = OwlViTForObjectDetection(config)
    # Boxes from the patch grid alone (the head's own bias), so each is a real box: random
    # weights would push them to zero size at the image's edge.
    torch.nn.init.zeros_(model.box_head.dense2.weight)
    torch.nn.init.zeros_(model.box_head.dense2.bias)
    model.save_pretrained(folder)
    size = {"height": 64, "width": 64}
    OwlViTProcessor(image_processor=OwlViTImageProcessor(size=size, crop_size=size),
                    tokenizer=tokenizer).save_pretrained(folder)
    return folder


def write_segmenter(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=128, patch_size=16,
                           output_channels=32, global_attn_indexes=[1], num_pos_feats=16,
                           mlp_dim=64, window_size=4),
        prompt_encoder_config=dict(hidden_size=32, image_size=128, patch_size=16,
                                   mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 mlp_dim=64, iou_head_hidden_dim=32))
    torch.manual_seed(seed)
    SamModel(config).save_pretrained(folder)
    SamProcessor(SamImageProcessor(
        size={"longest_edge": 128}, pad_size={"height": 128, "width": 128},
        mask_size={"longest_edge": 32}, mask_pad_size={"height": 32, "width": 32})
    ).save_pretrained(folder)
    return folder
