"""Model cards: the README.md inside each shipped model folder."""
from __future__ import annotations

import json
from pathlib import Path


def parameter_count(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in Path(folder).rglob("*.safetensors"):
        with safe_open(str(file), "pt") as tensors:
            for key in tensors.keys():
                count = 1
                for dim in tensors.get_slice(key).get_shape():
                    count *= dim
                total += count
    return total


def write_card(folder: Path, title: str, summary: str, load: str, sections: dict[str, str],
               figures: dict) -> None:
    """`sections` are titled paragraphs (data, architecture, training); `figures` the held-out
    numbers as measured by bench/models.py."""
    folder = Path(folder)
    lines = [f"# {title}", "", summary, "", "```python", load, "```", ""]
    lines += [f"Parameters: {parameter_count(folder):,}", ""]
    for heading, text in sections.items():
        lines += [f"## {heading}", "", text.strip(), ""]
    lines += ["## Held-out figures", "", "```json", json.dumps(figures, indent=2), "```", ""]
    (folder / "README.md").write_text("\n".join(lines))
