"""Train the shapes world's AutoencoderKL (128 px images -> 4 x 16 x 16 latents).

    python -m training.vae --steps 4000 --out checkpoints/vae

Resumable: rerun the same command to continue from `OUT/latest.pt`. Every `--eval-every`
steps it logs the share of held-out scenes the world's detector reads back exactly after a
round trip, which is the figure the model card reports.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from diffusers import AutoencoderKL

from training.data import Checkpointer, object_weights, scene_batch
from training.evaluate import vae_round_trip_accuracy

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    # Cheap at full resolution, wider where the grid is small: flat shapes need little
    # capacity per pixel, and the 128 px levels dominate the cost.
    block_out_channels=(8, 16, 32, 64), norm_num_groups=8, sample_size=128,
    mid_block_add_attention=False,
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--kl", type=float, default=1e-6)
    parser.add_argument("--object-weight", type=float, default=10.0)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="checkpoints/vae")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    vae = AutoencoderKL(**VAE_CONFIG)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    rng = np.random.default_rng(args.seed)
    checkpoints = Checkpointer(args.out)
    step = 0
    state = checkpoints.load()
    if state:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, rng.bit_generator.state = state["step"], state["rng"]
        torch.set_rng_state(state["torch_rng"])
    log = open(checkpoints.folder / "log.jsonl", "a")
    start = time.time()
    while step < args.steps:
        scenes, images = scene_batch(rng, args.batch)
        weights = object_weights(images, scenes, args.object_weight)
        posterior = vae.encode(images).latent_dist
        recon = vae.decode(posterior.sample()).sample
        error = (recon - images)
        loss_rec = (weights * (error.abs() + error ** 2)).mean()
        loss_kl = posterior.kl().mean()
        loss = loss_rec + args.kl * loss_kl
        # Cosine decay to a tenth of the peak rate.
        for group in optimizer.param_groups:
            group["lr"] = args.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        record = {"step": step, "loss": round(loss_rec.item(), 5), "kl": round(loss_kl.item(), 2),
                  "seconds": round(time.time() - start, 1)}
        if step % args.eval_every == 0 or step == args.steps:
            vae.eval()
            record["round_trip_exact"] = vae_round_trip_accuracy(vae, n=200)
            vae.train()
        if step % 50 == 0 or "round_trip_exact" in record:
            log.write(json.dumps(record) + "\n")
            log.flush()
            checkpoints.save({"model": vae.state_dict(), "optimizer": optimizer.state_dict(),
                              "step": step, "rng": rng.bit_generator.state,
                              "torch_rng": torch.get_rng_state(), "config": VAE_CONFIG})
    vae.save_pretrained(checkpoints.folder / "export")


if __name__ == "__main__":
    main()
