"""The index: FAISS store, SQLite metadata, atomic generations, embedder and CLI.

Store tests use seeded synthetic vectors; embedder and CLI tests use a tiny open_clip folder
written with training.clip.prepare_folder and seeded random weights. Nothing downloads.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_clip

from index import vectors as vx
from index.errors import (EmbedderMismatch, IndexBusy, IndexCorrupt, IndexInputError,
                          IndexNotFound, ModelNotFound, UnknownIds)
from index.metadata import Item
from index.store import IndexStore, index_root, read_pointer

REPO = tiny_clip.REPO
DIM = 32


def items(n: int, start: int = 0, tags=()) -> list[Item]:
    return [Item(hashlib.sha256(f"image {i}".encode()).hexdigest(), f"/images/{i}.png",
                 f"caption {i}", 8, 8, tags) for i in range(start, start + n)]


def clustered(n: int, dim: int = DIM, clusters: int = 16, seed: int = 0) -> np.ndarray:
    """Unit vectors around fixed centres (each seed draws other points from the same
    distribution): neighbourhoods an ANN index can find."""
    centres = np.random.default_rng(1234).standard_normal((clusters, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def saved_store(root: Path, n: int = 200, **options) -> tuple[IndexStore, np.ndarray]:
    store = IndexStore(root, "test-embedder", DIM, **options)
    x = clustered(n)
    store.add(x, items(n, tags=["synthetic"]))
    store.save()
    return store, x


def assert_same(a: IndexStore, b: IndexStore, probe: np.ndarray) -> None:
    assert len(a) == len(b)
    assert list(a.ids()) == list(b.ids())
    assert a.records(a.ids()) == b.records(b.ids())
    np.testing.assert_array_equal(a.vectors(a.ids()), b.vectors(b.ids()))
    assert a.search(probe, 5) == b.search(probe, 5)


# --- store ------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    store, x = saved_store(tmp_path / "index")
    loaded = IndexStore.load(tmp_path / "index")
    assert_same(store, loaded, x[:7])
    assert (loaded.embedder, loaded.dim, loaded.factory) == ("test-embedder", DIM, "IDMap2,Flat")
    sidecar = json.loads((tmp_path / "index" / read_pointer(tmp_path / "index") /
                          "sidecar.json").read_text())
    assert sidecar["embedder"] == "test-embedder" and sidecar["dim"] == DIM
    assert sidecar["count"] == 200 and sidecar["metric"] == "cosine"
    # Each vector's nearest neighbour is itself, at cosine 1.
    top = loaded.search(x[:20], 1)
    assert [hits[0][0] for hits in top] == list(range(20))
    assert all(abs(hits[0][1] - 1.0) < 1e-5 for hits in top)


def test_add_remove_round_trip_never_reuses_ids(tmp_path):
    store, x = saved_store(tmp_path / "index", n=50)
    store.remove([3, 7, 49])
    assert len(store) == 47
    assert all(i not in (3, 7, 49) for hits in store.search(x[[3, 7, 49]], 10) for i, _ in hits)
    added = store.add(clustered(2, seed=5), items(2, start=1000))
    assert added.new_ids == [50, 51]  # after the largest id ever given, not a freed one
    store.save()
    assert_same(store, IndexStore.load(tmp_path / "index"), x[:5])
    with pytest.raises(UnknownIds, match="3"):
        store.remove([3, 4])
    assert 4 in store.ids()  # a refused removal removes nothing


def test_dedup_by_content_hash(tmp_path):
    store = IndexStore(tmp_path / "index", "test-embedder", DIM)
    x = clustered(6)
    first = store.add(x[:4], items(3) + items(1))  # the 4th repeats the 1st within one call
    assert first.ids == [0, 1, 2, 0] and first.new == [True, True, True, False]
    second = store.add(x[2:6], items(4))
    assert second.ids == [0, 1, 2, 3] and second.duplicate_ids == [0, 1, 2]
    assert len(store) == 4 and len(store.metadata) == 4


def test_tag_filter_returns_only_tagged_items(tmp_path):
    store = IndexStore(tmp_path / "index", "test-embedder", DIM)
    x = clustered(40)
    store.add(x[:20], items(20, tags=["brand", "red"]))
    store.add(x[20:], items(20, start=20, tags=["red"]))
    hits = store.search(x[25:26], 10, tags=["Brand"])[0]
    assert len(hits) == 10 and all(i < 20 for i, _ in hits)
    assert store.search(x[:1], 5, tags=["missing"]) == [[]]
    with pytest.raises(IndexInputError, match="tag"):
        store.search(x[:1], 5, tags=["no spaces allowed"])


def test_embedder_mismatch_is_refused(tmp_path):
    saved_store(tmp_path / "index")
    with pytest.raises(EmbedderMismatch, match="test-embedder"):
        IndexStore.load(tmp_path / "index", "another-model", DIM)
    with pytest.raises(EmbedderMismatch, match="32-d"):
        IndexStore.open(tmp_path / "index", "test-embedder", 64)
    IndexStore.load(tmp_path / "index", "test-embedder", DIM)  # the right one loads


def test_wrong_vectors_are_refused(tmp_path):
    store = IndexStore(tmp_path / "index", "test-embedder", DIM)
    with pytest.raises(IndexInputError, match="shape"):
        store.add(np.ones((1, DIM + 1)), items(1))
    with pytest.raises(IndexInputError, match="zeros"):
        store.add(np.zeros((1, DIM)), items(1))
    with pytest.raises(IndexInputError, match="NaN"):
        store.add(np.full((1, DIM), np.nan), items(1))
    assert len(store) == 0


def test_missing_and_inconsistent_indexes_are_reported(tmp_path):
    with pytest.raises(IndexNotFound, match="build"):
        IndexStore.load(tmp_path / "nothing")
    saved_store(tmp_path / "index")
    sidecar = tmp_path / "index" / read_pointer(tmp_path / "index") / "sidecar.json"
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "count": 199}))
    with pytest.raises(IndexCorrupt, match="199"):
        IndexStore.load(tmp_path / "index")


def test_second_writer_is_refused_instead_of_losing_changes(tmp_path):
    saved_store(tmp_path / "index")
    first, second = IndexStore.load(tmp_path / "index"), IndexStore.load(tmp_path / "index")
    first.add(clustered(1, seed=9), items(1, start=500))
    first.save()
    second.remove([0])
    with pytest.raises(IndexBusy):
        second.save()
    assert len(IndexStore.load(tmp_path / "index")) == 201


def test_old_generations_are_swept(tmp_path):
    store, _ = saved_store(tmp_path / "index")
    for _ in range(3):
        store.save()
    names = sorted(p.name for p in (tmp_path / "index").iterdir() if p.name.startswith("gen-"))
    assert names == ["gen-000003", "gen-000004"]  # the live one and the one before it


def test_index_names_stay_under_home(tmp_path):
    assert index_root(tmp_path) == tmp_path / "index"
    assert index_root(tmp_path, "brand") == tmp_path / "indexes" / "brand"
    for bad in ("../elsewhere", "a/b", "Big"):
        with pytest.raises(IndexInputError):
            index_root(tmp_path, bad)


# --- index types ------------------------------------------------------------------------

def test_index_type_follows_size():
    assert vx.choose_factory(10, 512) == "IDMap2,Flat"
    assert vx.choose_factory(100_000, 512) == "IDMap2,Flat"
    assert vx.choose_factory(1_000_000, 512) == "IVF4096,SQ8"
    with pytest.raises(IndexInputError, match="factory|IVF"):
        vx.new_index("IVF-nonsense", 8)


def test_store_switches_to_ivf_past_the_exact_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(vx, "EXACT_LIMIT", 1000)
    store, x = saved_store(tmp_path / "index", n=900)
    assert store.factory == "IDMap2,Flat"
    store.add(clustered(600, seed=1), items(600, start=900))
    store.save()
    loaded = IndexStore.load(tmp_path / "index")
    assert loaded.factory.startswith("IVF") and loaded.search_params.startswith("nprobe=")
    assert [hits[0][0] for hits in loaded.search(x[:10], 1)] == list(range(10))


@pytest.mark.parametrize("factory", ["IVF32,Flat", "IVF32,SQ8", "HNSW16,Flat"])
def test_approximate_indexes_keep_ids_recall_and_removal(tmp_path, factory):
    n = 2000
    store = IndexStore(tmp_path / "index", "test-embedder", DIM, factory=factory)
    x = clustered(n, seed=2)
    store.add(x, items(n))
    store.rebuild()  # tunes nprobe / efSearch for recall
    queries = clustered(100, seed=3)
    _, rows = vx.exact_knn(x, queries, 10)
    found = store.search(queries, 10)
    recall = np.mean([len({i for i, _ in f} & set(r)) / 10 for f, r in zip(found, rows)])
    assert recall >= 0.9, (factory, store.search_params, recall)
    store.remove([0, 1, 2])
    assert len(store) == n - 3 and 0 not in {i for i, _ in store.search(x[:1], 5)[0]}
    store.save()
    loaded = IndexStore.load(tmp_path / "index")
    assert loaded.factory.endswith(factory) and loaded.factory_pinned
    assert loaded.search(queries[:5], 10) == store.search(queries[:5], 10)


# --- atomic saves -------------------------------------------------------------------------

WRITER = r"""
import hashlib, sys, time
import numpy as np
from index import store as st
from index.metadata import Item, Metadata

root, point = sys.argv[1], sys.argv[2]
store = st.IndexStore.load(root)

def batch(start, n):
    rng = np.random.default_rng(start)
    return (rng.standard_normal((n, store.dim)).astype(np.float32),
            [Item(hashlib.sha256(f"new {i}".encode()).hexdigest(), f"/new/{i}.png")
             for i in range(start, start + n)])

def pause(*_):
    print("paused", flush=True)
    time.sleep(120)

if point == "index-file":  # die with index.faiss half written
    write = st.vx.write
    def half_write(index, path):
        write(index, path)
        with open(path, "r+b") as f:
            f.truncate(f.seek(0, 2) // 2)
        pause()
    st.vx.write = half_write
elif point == "metadata":  # die after index.faiss, with the metadata written
    save = Metadata.save
    def save_then_pause(self, path):
        save(self, path)
        pause()
    Metadata.save = save_then_pause
elif point == "pointer":  # die with the new generation complete but not yet live
    st.IndexStore._switch_pointer = pause
elif point == "pointer-tmp":  # die with CURRENT.tmp written, not yet moved over CURRENT
    st.os.replace = pause

if point == "loop":  # keep changing and saving until killed
    start = 10_000
    while True:
        store.add(*batch(start, 400))
        store.remove(store.ids()[:100])
        store.save()
        start += 400
        print("saved", flush=True)
else:
    store.add(*batch(10_000, 300))
    store.remove([0, 1])
    store.save()
    print("finished", flush=True)
"""


def run_writer(root: Path, point: str, kill_after: float | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(root), point], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() in ("paused", "saved"), child.stderr.read()
        if kill_after:
            time.sleep(kill_after)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()


def assert_consistent(store: IndexStore) -> None:
    ids = store.ids()
    assert len(ids) == len(store) == len(store.metadata)
    assert len(store.vectors(ids)) == len(ids)  # every metadata row has its vector
    assert len(store.records(ids)) == len(ids)


@pytest.mark.parametrize("point", ["index-file", "metadata", "pointer", "pointer-tmp"])
def test_writer_killed_midway_leaves_previous_generation(tmp_path, point):
    root = tmp_path / "index"
    before, x = saved_store(root)
    run_writer(root, point)
    after = IndexStore.load(root)
    assert after.generation == before.generation
    assert_same(before, after, x[:5])
    assert_consistent(after)
    # The next writer sweeps the dead one's folder and saves normally.
    after.add(clustered(1, seed=8), items(1, start=900))
    after.save()
    assert not list(root.glob("*.tmp")) and len(IndexStore.load(root)) == 201


def test_writer_killed_at_arbitrary_moments_never_breaks_the_index(tmp_path):
    root = tmp_path / "index"
    saved_store(root, n=2000)
    for delay in (0.0, 0.05, 0.17):
        run_writer(root, "loop", kill_after=delay)
        assert_consistent(IndexStore.load(root))


# --- embedder -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tiny_clip.shared_models(tmp_path_factory)


@pytest.fixture(scope="module")
def embedder(models):
    from index.embedder import Embedder

    return Embedder.shipped(models, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def scenes_folder(tmp_path_factory) -> Path:
    from world.demo_collection import write_demo_collection

    folder = tmp_path_factory.mktemp("scenes")
    write_demo_collection(folder, 20, seed=4)
    return folder


def test_embedder_is_named_without_loading(models):
    from index.embedder import Embedder

    embedder = Embedder.shipped(models)
    assert embedder.dim == 128 and embedder.name.startswith("shapes-clip@")
    assert embedder._model is None  # name and dim came from the files alone
    with pytest.raises(ModelNotFound, match="open_clip_config.json"):
        Embedder.shipped(models / "nowhere")


def test_batched_encoding_matches_one_at_a_time(embedder, scenes_folder):
    paths = sorted(scenes_folder.glob("*.png"))[:11]  # 11 over batches of 8: a ragged end
    batched = embedder.encode_images(paths)
    single = np.stack([embedder.encode_image(p) for p in paths])
    assert batched.dtype == np.float32 and batched.shape == (11, 128)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-5)
    texts = embedder.encode_texts(["a red circle", "two blue squares", "a red circle"])
    np.testing.assert_allclose(texts[0], texts[2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_batch_preprocessing_matches_open_clips_per_image_preprocessing(embedder, scenes_folder):
    import torch
    from PIL import Image

    from index.embedder import batched_preprocess

    embedder.load()
    pictures = [Image.open(p).convert("RGB") for p in sorted(scenes_folder.glob("*.png"))[:6]]
    wide = [Image.fromarray(np.asarray(p)[:, :100]) for p in pictures]  # resize, then crop
    for batch in (pictures, wide):
        expected = torch.stack([embedder._preprocess(p) for p in batch])
        got = embedder._batched_preprocess(batch)
        assert got.shape == expected.shape == (len(batch), 3, 64, 64)
        levels = (got - expected).abs() * 127.5  # normalised by mean and std 0.5
        assert levels.max() <= 4.01 and levels.mean() < 0.25
    # A mix of sizes takes open_clip's own per-image path.
    mixed = embedder.encode_images([pictures[0], wide[1]])
    np.testing.assert_allclose(mixed[1], embedder.encode_image(wide[1]), atol=1e-3)
    # A preprocessing step it cannot replay on a tensor: no batched form.
    from torchvision import transforms as T
    assert batched_preprocess(T.Compose([T.Grayscale(3), T.ToTensor()])) is None


def test_collection_refuses_another_embedder(tmp_path, embedder, scenes_folder):
    from index.collection import Collection

    store = IndexStore(tmp_path / "index", "another-model@0123", 128)
    with pytest.raises(EmbedderMismatch, match="another-model"):
        Collection(store, embedder)


# --- command line -------------------------------------------------------------------------

def atelier(*args: str, home: Path, models: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATELIER_HOME": str(home), "ATELIER_MODELS": str(models),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def run_cli(monkeypatch, capsys, home: Path, models: Path, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (the models are imported already), as a user calls it."""
    from agent.interfaces.cli import main

    monkeypatch.setenv("ATELIER_HOME", str(home))
    monkeypatch.setenv("ATELIER_MODELS", str(models))
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_build_search_add_remove_stats(tmp_path, models, scenes_folder, monkeypatch,
                                           capsys):
    home = tmp_path / "home"
    built = atelier("index", "build", str(scenes_folder), "--tags", "shapes,world",
                    home=home, models=models)
    assert built.returncode == 0, built.stderr
    assert "indexed 20 new images" in built.stdout

    code, out, err = run_cli(monkeypatch, capsys, home, models, "index", "search",
                             "a red circle", "--k", "3", "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert len(hits) == 3 and {"id", "score", "path", "caption"} <= set(hits[0])
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert all(Path(h["path"]).parent == scenes_folder for h in hits)

    image = scenes_folder / "000007.png"
    code, out, _ = run_cli(monkeypatch, capsys, home, models, "index", "search", "--image",
                           str(image), "--k", "2", "--json")
    assert code == 0 and json.loads(out)[0]["path"] == str(image)

    code, out, _ = run_cli(monkeypatch, capsys, home, models, "index", "add", str(image))
    assert code == 0 and "already indexed" in out

    code, out, _ = run_cli(monkeypatch, capsys, home, models, "index", "remove", "7", "8")
    assert code == 0 and "18 left" in out

    code, out, _ = run_cli(monkeypatch, capsys, home, models, "index", "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["count"] == 18 and stats["tags"] == {"shapes": 18, "world": 18}
    assert stats["embedder"].startswith("shapes-clip@") and stats["dim"] == 128


def test_cli_errors_are_one_line(tmp_path, models, scenes_folder, monkeypatch, capsys):
    home = tmp_path / "home"
    missing = atelier("index", "search", "a red circle", home=home, models=models)
    assert missing.returncode == 1 and one_line_error(missing.stderr)
    assert "no index" in missing.stderr

    code, _, err = run_cli(monkeypatch, capsys, home, models, "index", "build",
                           str(scenes_folder), "--tags", "ok")
    assert code == 0, err
    for args, expected in [
        (("index", "remove", "999"), "no item with id 999"),
        (("index", "search"), "give a search text"),
        (("index", "search", "x", "--image", str(tmp_path / "none.png")), "no such file"),
        (("index", "build"), "either a folder"),
        (("index", "build", str(scenes_folder), "--tags", "bad tag!"), "not allowed"),
        (("index", "build", str(scenes_folder), "--factory", "IVF-what"), "FAISS cannot"),
        (("index", "search", "x", "--index", "../up"), "not allowed"),
    ]:
        code, _, err = run_cli(monkeypatch, capsys, home, models, *args)
        assert code == 2 and expected in err and one_line_error(err), (args, err)

    other = tmp_path / "other-models" / "shapes-clip"
    other.mkdir(parents=True)
    for file in (models / "shapes-clip").iterdir():
        other.joinpath(file.name).write_bytes(file.read_bytes())
    weights = other / "open_clip_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\1")  # other weights, other name
    code, _, err = run_cli(monkeypatch, capsys, home, other.parent, "index", "search", "x")
    assert code == 2 and "embedder" in err and one_line_error(err)
