"""Memory: peak RSS with every adapter ready, against text-to-image alone.

Each side runs in a fresh process (bench/pipelines.py's `_measure`), loads what it needs and
runs each of its operations once. Every operation is built on the base model's components
(pipelines/models.py), so the ratio is what the operations add on top of them.
"""
from __future__ import annotations

import argparse

from bench.harness import row

TITLE = "Memory: peak RSS with every adapter ready vs text-to-image alone"
KIND = "cost"


def run(context) -> dict:
    from bench.pipelines import TARGET_MEMORY_RATIO, memory

    figures = memory(argparse.Namespace(models=context.models, base=None, edit=None,
                                        device=context.device))
    alone, every = figures["text_to_image"], figures["all_adapters"]
    figures["summary"] = [
        row("peak RSS, every adapter ready and run once", every["peak_rss_mb"], unit="MB",
            baseline=alone["peak_rss_mb"], baseline_label="text-to-image alone",
            ratio=figures["ratio"], target=f"<= {TARGET_MEMORY_RATIO}x",
            ok=figures["ratio"] <= TARGET_MEMORY_RATIO),
    ]
    rows = [["text-to-image alone", alone["peak_rss_mb"], alone["ready_s"]],
            ["every adapter", every["peak_rss_mb"], every["ready_s"]]]
    figures["tables"] = [{"title": "Peak resident memory, each in a fresh process",
                          "columns": ["", "peak RSS (MB)", "seconds to ready"], "rows": rows}]
    if "cuda_ratio" in figures:
        figures["summary"].append(row("peak CUDA memory, every adapter / text-to-image",
                                      figures["cuda_ratio"], unit="x"))
    return figures
