"""Write tests/data/conversations.jsonl: multi-turn sessions as a person types them.

    python tests/data/make_conversations.py        # rewrites the file; same output every run

It imports only the installed packages (`pip install -e .`), so it runs from any directory.

Each session opens with a request for a new picture (a phrasing of a sampled scene, with the
constraints it states) and goes on with two edit instructions, each drawn for the scene the
previous turn asked for. The file keeps the intended scenes so a judge can find, in whatever
image the previous turn really made, the objects each edit names (bench/conversation.py).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from world.check import constraints_to_json
from world.edits import sample_edit
from world.phrasings import sample_phrasing
from world.sample import sample_scene

OUT = Path(__file__).with_name("conversations.jsonl")
SESSIONS = 36
EDITS_PER_SESSION = 2
SEED = 2_718


def conversations(n: int = SESSIONS, seed: int = SEED) -> list[dict]:
    rng = np.random.default_rng(seed)
    sessions = []
    while len(sessions) < n:
        scene = sample_scene(rng, n_objects=int(rng.integers(1, 3)), background="white")
        phrasing = sample_phrasing(scene, rng)
        turns = [{"request": phrasing.text, "kind": "generate",
                  "constraints": json.loads(constraints_to_json(phrasing.constraints)),
                  "intended": scene.to_dict()}]
        try:
            for _ in range(EDITS_PER_SESSION):
                edit, after = sample_edit(scene, rng)
                turns.append({"request": edit.instruction, "kind": edit.kind,
                              "edit": edit.to_dict(), "before": scene.to_dict(),
                              "intended": after.to_dict()})
                scene = after
        except ValueError:  # no edit fits the scene: draw another session
            continue
        sessions.append({"session": f"conv-{len(sessions):03d}", "seed": int(rng.integers(2**31)),
                         "turns": turns})
    return sessions


def main() -> None:
    with OUT.open("w") as f:
        for session in conversations():
            f.write(json.dumps(session) + "\n")
    print(f"wrote {OUT} ({SESSIONS} sessions, {SESSIONS * (1 + EDITS_PER_SESSION)} turns)")


if __name__ == "__main__":
    main()
