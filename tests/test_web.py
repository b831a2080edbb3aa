"""`atelier web`: the page's turns, uploads, masks, undo and redo, seen from outside.

The page runs in this process on a free loopback port, over `WorldRunner` (exact images drawn
by the world's renderer), and is driven as a browser would drive it: through Gradio's own
client, plain HTTP, and headless Chromium (Debian's, through Playwright). One test starts the
real `atelier web` command on tiny diffusers models."""
from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from world_runner import WorldRunner

from agent.api import Atelier
from world.detect import detect
from world.render import render
from world.scene import Obj, Scene

gradio_client = pytest.importorskip("gradio_client", reason="the web extra is not installed")
pytest.importorskip("gradio", reason="the web extra is not installed")
httpx = pytest.importorskip("httpx")

from agent.interfaces.web import MAX_UPLOAD_SIDE, mask_from, serve  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.timeout(180),
              # Gradio's queue calls pandas in ways pandas 3 deprecates; not this project's code.
              pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    atelier = Atelier(home=home, models=WorldRunner())
    server = serve(atelier, "127.0.0.1", None)
    yield server, atelier
    server.close()
    atelier.close()


def client(server, tmp_path):
    return gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path))


def objects(path) -> set[tuple[str, str]]:
    from PIL import Image

    with Image.open(path) as image:
        return {(o.shape, o.color) for o in detect(image.convert("RGB")).scene.objects}


def texts(chat) -> list[str]:
    return [part["text"] for message in chat for part in message["content"]
            if part.get("type") == "text"]


def test_a_turn_shows_the_image_plan_rationale_and_checks(page, tmp_path):
    server, _ = page
    user = client(server, tmp_path)
    chat, canvas, status, plan, rationale, exemplars, checks, box = user.predict(
        "a red circle to the left of a blue square", None, "5", api_name="/send")
    assert status.startswith("image img_1, seed 5")
    assert "layout(" in plan and "You asked for 2 object" in rationale
    assert "img_1 (step 1, attempt 1): passed (world)" in checks
    assert objects(canvas["background"]) == {("circle", "red"), ("square", "blue")}
    assert texts(chat)[0] == "a red circle to the left of a blue square"
    assert [m["content"][0]["type"] for m in chat] == ["text", "text", "file"]
    assert box == ""


def test_undo_and_redo_move_the_canvas(page, tmp_path):
    server, _ = page
    user = client(server, tmp_path)
    *_, status = user.predict(api_name="/undo")
    assert status == "nothing to undo"
    user.predict("a red circle", None, "1", api_name="/send")
    user.predict("make the circle green", None, "1", api_name="/send")
    _, canvas, status = user.predict(api_name="/undo")
    assert status == "undo: now at img_1" and objects(canvas["background"]) == {("circle", "red")}
    _, canvas, status = user.predict(api_name="/redo")
    assert status == "redo: now at img_2"
    assert objects(canvas["background"]) == {("circle", "green")}


def test_bad_input_is_refused_in_the_status_line(page, tmp_path):
    server, _ = page
    user = client(server, tmp_path)
    assert user.predict("   ", None, "", api_name="/send")[2].startswith(
        "**Not run:** the request is empty")
    assert "is not a whole number" in user.predict("a red circle", None, "x", api_name="/send")[2]
    assert "seed -1 is not a whole number in 0..4294967295" in user.predict(
        "a red circle", None, "-1", api_name="/send")[2]
    status = user.predict("a flibbertigibbet", None, "1", api_name="/send")[2]
    assert status.startswith("**Turn failed** (not_understood)")


def test_eight_users_at_once_each_get_their_own_turn_and_images(page, tmp_path):
    server, atelier = page
    shapes = ("circle", "square", "triangle")
    colors = ("red", "green", "blue", "yellow")
    asks = [(colors[i % 4], shapes[i % 3]) for i in range(8)]
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []
    before = set(atelier.sessions())

    def user(i):
        try:
            color, shape = asks[i]
            me = client(server, tmp_path / f"user{i}")
            first = me.predict(f"a {color} {shape}", None, str(i), api_name="/send")
            # A second turn names img_1: it must be this user's image, whoever else has one.
            second = me.predict(f"make the {shape} purple", None, str(i), api_name="/send")
            results[i] = (first, second)
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    assert not any(t.is_alive() for t in threads), "a user did not finish in time"
    assert not errors, errors
    assert time.monotonic() - started < 150
    for i, (first, second) in results.items():
        color, shape = asks[i]
        assert first[2].startswith("image img_1"), (i, first[2])
        assert second[2].startswith("image img_2"), (i, second[2])
        assert objects(first[1]["background"]) == {(shape, color)}
        assert objects(second[1]["background"]) == {(shape, "purple")}
        assert texts(second[0])[0] == f"a {color} {shape}"       # only this user's chat
        assert not any(f"a {c} {s}" in t for c, s in asks if (c, s) != (color, shape)
                       for t in texts(second[0]))
    # Eight new sessions in the store, each holding one user's two turns and nobody else's.
    new = [name for name in atelier.sessions() if name not in before]
    assert len(new) == 8 and all(name.startswith("web-") for name in new)
    turns = sorted(tuple(t.request for t in atelier.session(name).history()) for name in new)
    assert turns == sorted((f"a {c} {s}", f"make the {s} purple") for c, s in asks)


def test_a_session_cannot_reach_another_sessions_images(page, tmp_path):
    server, atelier = page
    alice = client(server, tmp_path / "alice")
    _, canvas, status, *_ = alice.predict("a yellow triangle", None, "3", api_name="/send")
    assert status.startswith("image img_")
    bob = client(server, tmp_path / "bob")
    # Ids name images of the asker's own session only.
    chat, canvas, status, *_ = bob.predict("make img_1 blue", None, "3", api_name="/send")
    assert "no image img_1 in this session" in status and canvas is None
    assert bob.predict(api_name="/undo")[1:] == (None, "nothing to undo")

    # Over HTTP, the store's database and files outside its images are refused, by any path.
    home = Path(atelier.home).resolve()
    for path in (home / "atelier.db", home / "images" / ".." / "atelier.db", Path("/etc/passwd"),
                 home / "images" / "img_1.png", REPO / "README.md"):
        response = httpx.get(f"{server.url}gradio_api/file={path}", timeout=10)
        assert response.status_code in (403, 404), (path, response.status_code)
    # Nor does the page fetch other sites' files for anyone who asks.
    response = httpx.get(f"{server.url}gradio_api/file=http://example.com/a.png", timeout=10)
    assert (response.status_code, response.text) == (403, "only the store's files are served")


def test_uploads_are_capped_in_bytes_and_pixels(page, tmp_path):
    from PIL import Image

    server, _ = page
    user = client(server, tmp_path)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (MAX_UPLOAD_SIDE + 1, 16), "white").save(wide)
    canvas, status = user.predict(gradio_client.handle_file(str(wide)), api_name="/upload")
    assert status == (f"**Upload refused:** wide.png is {MAX_UPLOAD_SIDE + 1}x16 pixels; the page "
                      f"takes images up to {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE}, so scale it down "
                      "first")
    assert canvas is None
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    status = user.predict(gradio_client.handle_file(str(fake)), api_name="/upload")[1]
    assert "fake.png is not an image" in status

    # Larger files never reach a handler: the server refuses the upload itself.
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(11 * 2**20))
    with open(big, "rb") as handle:
        response = httpx.post(f"{server.url}gradio_api/upload", files={"files": handle}, timeout=30)
    assert response.status_code == 413, response.text

    # An accepted upload becomes the image the next request works on.
    scene = tmp_path / "scene.png"
    render(Scene((Obj("circle", "red", "large", 0.3, 0.5),
                  Obj("square", "blue", "large", 0.7, 0.5)))).save(scene)
    canvas, status = user.predict(gradio_client.handle_file(str(scene)), api_name="/upload")
    assert status.startswith("uploaded scene.png (128x128)")
    chat, canvas, status, *_ = user.predict("make the circle green", None, "2", api_name="/send")
    assert status.startswith("image img_2")
    assert objects(canvas["background"]) == {("circle", "green"), ("square", "blue")}
    assert "(with the uploaded image scene.png)" in texts(chat)
    shown = [m["content"][0]["file"] for m in chat
             if m["role"] == "user" and m["content"][0]["type"] == "file"]
    assert len(shown) == 1 and objects(shown[0]) == {("circle", "red"), ("square", "blue")}


def test_a_painted_region_is_all_that_changes(page, tmp_path):
    from PIL import Image

    server, _ = page
    user = client(server, tmp_path)
    _, before, *_ = user.predict("a red circle at the left", None, "4", api_name="/send")
    layer = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    layer.paste((255, 0, 255, 255), (64, 0, 128, 128))
    layer.save(tmp_path / "layer.png")
    painted = gradio_client.handle_file(str(tmp_path / "layer.png"))
    canvas = {"background": None, "layers": [painted], "composite": None}
    chat, after, status, plan, *_ = user.predict("a blue square at the right", canvas, "4",
                                                 api_name="/send")
    assert 'inpaint(prompt="a blue square at the right", target="img_2")' in plan, status
    assert "a blue square at the right (in the painted region)" in texts(chat)
    old, new = Image.open(before["background"]), Image.open(after["background"])
    assert old.crop((0, 0, 64, 128)).tobytes() == new.crop((0, 0, 64, 128)).tobytes()
    assert ("square", "blue") in objects(after["background"])


def test_the_panels_list_exemplars_checks_and_corrections(tmp_path):
    from agent.turn.events import CheckResult, Correction, ExemplarsRetrieved
    from agent.interfaces.web import Panels

    exemplar = tmp_path / "ref.png"
    render(Scene((Obj("triangle", "red", "small", 0.5, 0.5),))).save(exemplar)
    panels = Panels()
    panels.add(ExemplarsRetrieved(1, "a red triangle", (
        {"id": "ref_1", "index_id": 4, "score": 0.91, "caption": "a small red triangle",
         "path": str(exemplar)},
        {"id": "ref_2", "index_id": 5, "score": 0.5, "caption": "gone", "path": "/nowhere.png"})))
    panels.add(CheckResult("img_1", 1, 1, False, "world", ("no red triangle",)))
    panels.add(Correction(1, 2, "seed", "generate", {}, "another seed"))
    ((image, caption),) = panels.exemplars        # a missing file is left out, not an error
    assert image.size == (128, 128) and caption == "ref_1 (0.91): a small red triangle"
    assert panels.checks_markdown() == (
        "- img_1 (step 1, attempt 1): failed (world): no red triangle\n"
        "- step 1, attempt 2: seed (generate): another seed")


def test_mask_from_reads_painted_pixels_only():
    from PIL import Image

    assert mask_from(None) is None
    assert mask_from({"background": None, "layers": [], "composite": None}) is None
    clear = Image.new("RGBA", (8, 8), (255, 0, 255, 0))
    assert mask_from({"layers": [clear]}) is None
    painted = clear.copy()
    painted.putpixel((2, 3), (255, 0, 255, 40))
    mask = mask_from({"layers": [clear, painted]})
    assert mask.mode == "L" and mask.getbbox() == (2, 3, 3, 4) and mask.getpixel((2, 3)) == 255


# --- in a browser --------------------------------------------------------------------------------

def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_the_page_in_headless_chromium(page):
    playwright = pytest.importorskip("playwright.sync_api")
    executable = chromium()
    if executable is None:
        pytest.skip("no chromium on PATH; install Debian's (apt-get install chromium) to run "
                    "the browser test")
    server, _ = page
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, headless=True)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(30_000)
            tab.goto(server.url)
            tab.locator("#request textarea").fill("a green square at the top left")
            tab.locator("#seed textarea, #seed input").first.fill("11")
            tab.locator("#send").click()
            tab.locator("#chat img").first.wait_for()
            tab.wait_for_function(
                "document.querySelector('#status').innerText.startsWith('image img_1, seed 11')")
            assert "layout(" in tab.locator("#plan").inner_text()
            assert "You asked for 1 object" in tab.locator("#rationale").inner_text()
            assert "passed (world)" in tab.locator("#checks").inner_text()
            tab.locator("#undo").click()
            tab.wait_for_function(
                "document.querySelector('#status').innerText.includes('undo: now at the empty')")
            tab.locator("#redo").click()
            tab.wait_for_function(
                "document.querySelector('#status').innerText.includes('redo: now at img_1')")
        finally:
            browser.close()


# --- the command ---------------------------------------------------------------------------------

def test_the_cli_does_not_import_gradio_until_the_page_starts():
    code = ("import sys, agent.interfaces.cli; agent.interfaces.cli.build_parser(); "
            "assert 'gradio' not in sys.modules, 'gradio imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_web(home: Path, port: int, models: Path | None = None):
    """`atelier web` in a subprocess; returns it once it says it listens."""
    environment = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO),
                   "OMP_NUM_THREADS": "1"}
    if models is not None:
        environment["ATELIER_MODELS"] = str(models)
    # Ctrl-C reaches it as at a terminal, even when the tests run in the background, where the
    # shell has the children ignore SIGINT and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen([sys.executable, "-m", "agent.interfaces.cli", "web", "--port", str(port)],
                               cwd=REPO, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    seen: list[str] = []
    try:
        while not any(line.startswith("Atelier on ") for line in seen):
            seen.append(lines.get(timeout=90))
    except queue.Empty:
        stop(process)
        pytest.fail(f"atelier web did not start: {''.join(seen)}")
    assert seen[-1].startswith(f"Atelier on http://127.0.0.1:{port}/"), seen
    process.lines = lines
    return process


def stop(process) -> int:
    """Ctrl-C, as a person would stop it."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def test_atelier_web_serves_the_page_until_ctrl_c(tmp_path):
    port = free_port()
    process = start_web(tmp_path / "home", port)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).json()["title"] == "Atelier"
        # A second page cannot take the same port; it says so in one line.
        second = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "web", "--port", str(port)],
                                cwd=REPO, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "ATELIER_HOME": str(tmp_path / "home"),
                                     "PYTHONPATH": str(REPO)})
        assert second.returncode == 2, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert stop(process) == 0



@pytest.mark.slow
def test_atelier_web_runs_turns_on_the_models(tmp_path, tiny_models):
    port = free_port()
    process = start_web(tmp_path / "home", port, tiny_models)
    try:
        user = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False,
                                    download_files=str(tmp_path / "downloads"))
        chat, canvas, status, plan, rationale, *_ = user.predict(
            "a red circle", None, "7", api_name="/send")
        assert status.startswith("image img_"), status
        assert "planner: rules" in plan and rationale
        assert Path(canvas["background"]).is_file()
    finally:
        assert stop(process) == 0


@pytest.mark.parametrize("attempt", range(3))
def test_first_requests_at_once_on_a_cold_server_all_run(tmp_path, tiny_models, attempt):
    """A fresh server loads its models as it starts; four pages that send their first request
    at that moment all get images, with no second load beside the first."""
    from agent.turn.orchestrator import Limits

    # Random weights never pass a check: no corrections or re-plans, so the test is about
    # loading, not about retries.
    atelier = Atelier(home=tmp_path / "home", models=tiny_models, retriever=None,
                      limits=Limits(max_corrections=0, replans=0))
    server = serve(atelier, "127.0.0.1", None)
    barrier = threading.Barrier(4)
    statuses: dict[int, str] = {}
    errors: list[BaseException] = []

    def user(i):
        try:
            me = client(server, tmp_path / f"user{i}")
            barrier.wait()
            statuses[i] = me.predict("a red circle at the top left", None, str(i),
                                     api_name="/send")[2]
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    try:
        threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert not any(t.is_alive() for t in threads), "a page did not get its turn in time"
        assert not errors, errors
        assert sorted(statuses) == [0, 1, 2, 3]
        assert all(s.startswith("image img_1") for s in statuses.values()), statuses
    finally:
        server.close()
        atelier.close()
