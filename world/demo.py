"""The demonstration session behind `atelier demo`: five requests a person would type, which
the rule planner turns into five different operations, run as one checked session.

    store = demo_index(home, embedder)                  # built once, reused afterwards
    atelier = Atelier(home, retriever=Retriever(store, embedder))
    turns = run_demo_session(atelier.session("demo-..."), seed=1)

The models are small and do not always draw what was asked, and an edit names objects the
detector must find in the image they drew. When the planner cannot read an edit against that
image (no square to recolour, a background that is already gray), the session asks once more
the way a person looking at the image would, naming what is there; both turns are reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from world.planning.scenes import scene_of
from world.scene import Scene

DEMO_INDEX = "demo"     # ATELIER_HOME/indexes/demo, searchable with `atelier index --index demo`
# Enough seeded scenes that every colour and shape appears in many places; embedding them
# takes about 15 seconds on two CPU cores.
INDEX_SIZE = 300


def recolour_instead(scene: Scene) -> str | None:
    """"Make the square green" for an object the detector did find and can tell apart, a
    square that is not green yet if there is one; an add when it found no object."""
    if not scene.objects:
        return "add a green square"
    # Closest to the scripted request first: a square, then one that is not green yet.
    for obj in sorted(scene.objects, key=lambda o: (o.shape != "square", o.color == "green")):
        alike = [o for o in scene.objects
                 if (o.size, o.color, o.shape) == (obj.size, obj.color, obj.shape)]
        if len(alike) == 1:
            colour = "yellow" if obj.color == "green" else "green"
            return f"make the {obj.size} {obj.color} {obj.shape} {colour}"
    return None


def background_instead(scene: Scene) -> str | None:
    """Another background than the one the image already has."""
    return next(f"make the background {name}" for name in ("gray", "black", "white")
                if name != scene.background)


@dataclass(frozen=True)
class DemoTurn:
    request: str
    op: str                 # the operation the rule planner chooses for the request
    instead: Callable[[Scene], str | None] | None = None


TURNS = (
    DemoTurn("a large yellow triangle", "generate"),
    DemoTurn("a red circle left of a blue square", "layout"),
    DemoTurn("make the square green", "inpaint", recolour_instead),
    DemoTurn("make the background gray", "edit", background_instead),
    DemoTurn("a purple triangle in the top right corner, like the examples", "reference"),
)


@dataclass
class DemoResult:
    """One turn of the demo session: the store's TurnResult, and why it was asked when it
    rephrases the turn before."""

    result: object          # agent.sessions.session.TurnResult
    note: str | None = None


def demo_index(home: Path, embedder, size: int = INDEX_SIZE, say: Callable[[str], None] = print):
    """The demo's image index (an IndexStore), built from the seeded shapes-world collection
    the first time and reused afterwards; rebuilt when the shipped CLIP has changed, since
    vectors of two models do not compare."""
    from index.collection import Collection, read_captions
    from world.demo_collection import DEMO_SEED, DEMO_TAG, write_demo_collection
    from index.errors import IndexStoreError
    from index.store import IndexStore, index_root

    root = index_root(home, DEMO_INDEX)
    if IndexStore.exists(root):
        try:
            store = IndexStore.load(root, embedder.name, embedder.dim)
        except IndexStoreError as error:
            say(f"rebuilding the demo index: {error}")
        else:
            if len(store) >= size:
                say(f"demo index: {len(store)} images in {root}")
                return store
    say(f"building the demo index: {size} shapes-world scenes, embedded with "
        f"{embedder.name} into {root}")
    folder = Path(home) / "demo" / "collection"
    paths = write_demo_collection(folder, size, DEMO_SEED)
    collection = Collection.open(root, embedder, replace=IndexStore.exists(root))
    collection.add_files(paths, read_captions(folder), tags=[DEMO_TAG], progress=False)
    collection.save()
    return collection.store


def run_demo_session(session, *, seed: int, turns=TURNS,
                     on_event: Callable | None = None,
                     on_turn: Callable[[int, str, str | None], None] | None = None
                     ) -> list[DemoResult]:
    """Run the turns in one session. The n-th turn runs with seed + n - 1, so the same seed
    makes the same session. `on_turn(number, request, note)` is called before each turn and
    `on_event(event)` for each of its events."""
    done: list[DemoResult] = []

    def ask(request: str, note: str | None):
        if on_turn is not None:
            on_turn(len(done) + 1, request, note)
        run = session.stream(request, seed=(seed + len(done)) % 2**32)
        for event in run:
            if on_event is not None:
                on_event(event)
        done.append(DemoResult(run.result, note))
        return run.result

    for turn in turns:
        result = ask(turn.request, None)
        if result.ok or result.error_kind != "not_understood" or turn.instead is None:
            continue
        scene = scene_of(session.planning_context())
        rephrased = turn.instead(scene) if scene is not None else None
        if rephrased is not None:
            ask(rephrased, f"asked instead of {turn.request!r}, naming what the image shows: "
                           f"{result.error}")
    return done
