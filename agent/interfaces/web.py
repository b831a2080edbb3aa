"""The browser page of `atelier web`: the same conversation as `atelier chat`, on Gradio.

    server = serve(Atelier(), host="127.0.0.1", port=7860)    # returns once it listens
    server.url; server.close()

One Atelier (one store, one set of models) serves every browser. Each browser session gets its
own Atelier session, named with a random token that is kept in the server-side `gr.State` and
never sent to the page; every image id a handler reads is resolved in that session alone, so
a page cannot reach another page's images by naming them. The chat shown is kept server-side
too; the only files read from a request are uploads, which Gradio keeps to its upload folder.

What is served from disk: copies of the store's images that the handlers return, in Gradio's
cache folder inside ATELIER_HOME (`web/`). `allowed_paths` names only the store's `images/`
folder, so handlers may return those files (each is named by the sha256 of its bytes: only
someone who has an image can name its file). The database, the index, anything else on the
machine, and `/file=<URL>` (which Gradio would fetch from the web) are refused.

Turns run one at a time across all pages (the models are shared and not thread-safe); undo,
redo and uploads run beside them. The models start loading when the page starts, in a thread
of their own; a turn that arrives meanwhile waits for that load rather than starting a second
one (pipelines/once.py).
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from agent.errors import AtelierError, UsageError
from agent.turn.events import (CheckResult, Correction, ExemplarsRetrieved, PlanMade, StepStarted,
                          TurnDone)

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_SIDE = 1024              # pixels; Limits.max_side of the orchestrator, too
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP")
MAX_QUEUE = 64                      # waiting events beyond this are refused, not piled up
MAX_PAGES = 1000                    # browser sessions held at once; the oldest is let go
WEB_DIR = "web"                     # Gradio's upload and output cache, under ATELIER_HOME

EXAMPLES = ("a red circle to the left of a blue square",
            "make the circle green",
            "a large yellow triangle at the top right on a gray background")


@dataclass
class PageState:
    """One browser session, held by the server in gr.State."""

    session: str = field(default_factory=lambda: f"web-{secrets.token_hex(8)}")
    messages: list[dict] = field(default_factory=list)   # the chat as shown
    upload: Any = None                                   # an accepted image for the next turn
    upload_name: str = ""


@dataclass
class Panels:
    """The side panels for one turn, filled in as its events arrive."""

    plan: str = ""
    rationale: str = ""
    exemplars: list = field(default_factory=list)        # (PIL image, caption)
    checks: list[str] = field(default_factory=list)
    progress: str = ""

    def add(self, event) -> None:
        if isinstance(event, PlanMade):
            if event.round > 1:
                self.checks.append(f"re-planned after: {event.observation}")
            if event.repeated:
                self.checks.append("the planner gave the same plan again; it was not run twice")
                return
            self.rationale = event.plan.rationale
            self.plan = plan_text(event.plan, event.planner, event.round)
        elif isinstance(event, ExemplarsRetrieved):
            self.exemplars += exemplar_items(event)
        elif isinstance(event, StepStarted):
            self.progress = (f"step {event.step}/{event.total}: {event.op}"
                             + (f" (attempt {event.attempt})" if event.attempt > 1 else ""))
        elif isinstance(event, CheckResult):
            where = f"{event.image_id} (step {event.step}, attempt {event.attempt})"
            if event.passed is None:
                self.checks.append(f"{where}: not judged ({event.method})")
            elif event.passed:
                self.checks.append(f"{where}: passed ({event.method})")
            else:
                self.checks.append(f"{where}: failed ({event.method}): "
                                   + "; ".join(event.failures))
        elif isinstance(event, Correction):
            self.checks.append(f"step {event.step}, attempt {event.attempt}: {event.strategy} "
                               f"({event.op}): {event.reason}")
        elif isinstance(event, TurnDone) and event.checks_passed is False:
            self.checks.append("still failing after every correction; the closest attempt is "
                               "shown")

    def checks_markdown(self) -> str:
        return "\n".join(f"- {_escape(line)}" for line in self.checks) or "_No checks yet._"


def plan_text(plan, planner: str, round_: int) -> str:
    heading = f"planner: {planner}" + (f", round {round_}" if round_ > 1 else "")
    return "\n".join([heading, *plan.step_lines()])


def exemplar_items(event: ExemplarsRetrieved) -> list:
    """Thumbnails of retrieved exemplars, passed as pixels: the page serves copies, never the
    index's own files."""
    from agent.sessions.image_files import open_rgb

    items = []
    for hit in event.hits:
        try:
            image = open_rgb(hit["path"])
        except AtelierError:
            continue  # an index entry whose file went away: its caption is still in the plan
        items.append((image, f"{hit['id']} ({hit['score']:.2f}): {hit['caption']}"))
    return items


def _escape(text: str) -> str:
    """Requests, captions and errors may not make links, images, HTML or code in the page (an
    image link would have the browser fetch from elsewhere); other Markdown is harmless."""
    return "".join("\\" + c if c in "\\`[]<>!" else c for c in str(text))


# --- reading what the page sends ---------------------------------------------------------------

def open_upload(path: str | Path, name: str = "the image"):
    """An uploaded file as an RGB image, refused with a clear message when it is too large (in
    bytes or in pixels, before its pixels are decoded) or not an image."""
    from PIL import Image, UnidentifiedImageError

    from agent.sessions.image_files import to_rgb

    size = os.path.getsize(path)
    if size > MAX_UPLOAD_BYTES:
        raise UsageError(f"{name} is {size / 2**20:.1f} MB; the page takes files up to "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with Image.open(path) as image:
            if image.format not in UPLOAD_FORMATS:
                raise UsageError(f"{name} is {image.format or 'not an image'}; give a PNG, JPEG "
                                 "or WebP image")
            width, height = image.size
            if width > MAX_UPLOAD_SIDE or height > MAX_UPLOAD_SIDE:
                raise UsageError(f"{name} is {width}x{height} pixels; the page takes images up "
                                 f"to {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE}, so scale it down first")
            if width < 8 or height < 8:
                raise UsageError(f"{name} is {width}x{height} pixels; give an image at least "
                                 "8x8")
            image.load()
            return to_rgb(image)
    except Image.DecompressionBombError:
        raise UsageError(f"{name} has too many pixels to open safely; the page takes images up "
                         f"to {MAX_UPLOAD_SIDE}x{MAX_UPLOAD_SIDE}") from None
    except UnidentifiedImageError:
        raise UsageError(f"{name} is not an image; give a PNG, JPEG or WebP image") from None
    except OSError as error:
        raise UsageError(f"{name} could not be read ({error}); try saving it again") from None


def mask_from(canvas) -> Any:
    """The painted region of the image editor as an "L" mask (255 where painted), or None when
    nothing is painted. The editor's background is ignored: the page sets it itself."""
    from PIL import Image, ImageChops

    layers = (canvas.get("layers") or []) if isinstance(canvas, dict) else []
    mask = None
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, Image.Image):
            raise UsageError("the painted layer did not arrive as an image; paint it again")
        alpha = layer.getchannel("A") if "A" in layer.getbands() else layer.convert("L")
        painted = alpha.point(lambda value: 255 if value > 0 else 0)
        if mask is None:
            mask = painted
        elif painted.size != mask.size:
            raise UsageError("the painted layers differ in size; clear the drawing and paint again")
        else:
            mask = ImageChops.lighter(mask, painted)
    if mask is None or mask.getbbox() is None:
        return None
    return mask


def seed_from(value) -> int | None:
    """The seed box: blank for a random seed, else a whole number (the session checks range)."""
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"seed {text!r} is not a whole number; leave it blank for a random "
                         "one") from None


# --- the page's actions ------------------------------------------------------------------------

class Page:
    """The handlers behind the page, one Atelier shared by every browser session."""

    def __init__(self, atelier):
        self.atelier = atelier

    def _session(self, state: PageState | None):
        state = state if isinstance(state, PageState) else PageState()
        return state, self.atelier.session(state.session)

    def canvas(self, state: PageState, session) -> dict | None:
        """What the image editor shows: a waiting upload, else the session's current image."""
        if state.upload is not None:
            return {"background": state.upload, "layers": [], "composite": None}
        current = session.current
        if current is None:
            return None
        return {"background": str(current.path), "layers": [], "composite": None}

    def send(self, state, text, canvas, seed) -> Iterator[tuple]:
        """One turn. Yields (state, chat, canvas, status, plan, rationale, exemplars, checks,
        request box) as it runs; the canvas and the request box change only at the end."""
        import gradio as gr

        state, session = self._session(state)
        panels = Panels()
        try:
            mask = mask_from(canvas)
            run = session.stream(text if isinstance(text, str) else "", seed=seed_from(seed),
                                 image=state.upload, mask=mask)
        except AtelierError as error:
            yield (state, state.messages, gr.skip(), f"**Not run:** {_escape(error)}",
                   gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
            return
        said = _escape(run.request) + (" (in the painted region)" if mask is not None else "")
        state.messages.append({"role": "user", "content": said})
        if state.upload is not None:
            state.messages.append({"role": "user",
                                   "content": f"(with the uploaded image "
                                              f"{_escape(state.upload_name)})"})
        working = [*state.messages, {"role": "assistant", "content": "working..."}]
        yield (state, working, gr.skip(), f"seed {run.seed}: planning...", "", "", [],
               panels.checks_markdown(), gr.skip())
        try:
            for event in run:
                panels.add(event)
                if isinstance(event, (PlanMade, StepStarted, CheckResult)):
                    yield (state, working, gr.skip(),
                           f"seed {run.seed}: {panels.progress or 'planning...'}",
                           self._code(panels.plan), _escape(panels.rationale),
                           panels.exemplars, panels.checks_markdown(), gr.skip())
        except Exception:
            # The turn was not committed, so the session is as it was before it.
            log.exception("turn failed in session %s", state.session)
            state.messages.append({"role": "assistant",
                                   "content": "Something went wrong on the server; the turn "
                                              "was dropped. Try again."})
            yield (state, state.messages, self.canvas(state, session),
                   "**Error:** the turn failed on the server (see its log)", gr.skip(),
                   gr.skip(), gr.skip(), gr.skip(), gr.skip())
            return
        result = run.result
        if state.upload is not None:
            # The upload is now an image of the session: show the stored copy.
            uploaded = [i for i in session.images() if i.role == "upload" and i.turn == result.turn]
            state.messages += [{"role": "user", "content": {"path": str(i.path)}}
                               for i in uploaded]
        state.upload, state.upload_name = None, ""
        state.messages += self._reply(result)
        status = (f"image {result.image.id}, seed {result.seed}, {result.seconds:.1f} s"
                  if result.ok and result.image is not None else
                  f"**Turn failed** ({result.error_kind}): {_escape(result.error or '')}"
                  if not result.ok else "the canvas is empty")
        yield (state, state.messages, self.canvas(state, session), status,
               self._code(panels.plan), _escape(panels.rationale), panels.exemplars,
               panels.checks_markdown(), "")

    @staticmethod
    def _code(text: str) -> str:
        return f"```text\n{text}\n```" if text else ""

    @staticmethod
    def _reply(result) -> list[dict]:
        if not result.ok:
            what = "Not understood" if result.error_kind == "not_understood" else "Turn failed"
            return [{"role": "assistant", "content": f"{what}: {_escape(result.error or '')}"}]
        if result.action in ("undo", "redo"):
            where = result.image.id if result.image is not None else "the empty canvas"
            text = f"{result.action}: now at {where}"
            if result.note:
                text = f"{result.action}: {result.note}"
            return [{"role": "assistant", "content": text}]
        if result.image is None:
            return [{"role": "assistant", "content": _escape(result.rationale)}]
        verdict = {True: "checks passed", False: "checks still fail; this is the closest "
                   "attempt", None: "not checked"}[result.checks_passed]
        messages = [{"role": "assistant",
                     "content": f"{_escape(result.rationale)}\n\n{result.image.id}: {verdict}"}]
        messages.append({"role": "assistant", "content": {"path": str(result.image.path)}})
        return messages

    def move(self, state, direction: str) -> tuple:
        """Undo or redo. Returns (state, chat, canvas, status)."""
        state, session = self._session(state)
        try:
            image = session.undo() if direction == "undo" else session.redo()
        except UsageError as error:
            return state, state.messages, self.canvas(state, session), _escape(error)
        dropped = state.upload is not None
        state.upload, state.upload_name = None, ""
        where = image.id if image is not None else "the empty canvas"
        text = f"{direction}: now at {where}"
        if dropped:
            text += " (the uploaded image was set aside)"
        state.messages.append({"role": "assistant", "content": text})
        return state, state.messages, self.canvas(state, session), text

    def upload(self, state, path) -> tuple:
        """Accept an uploaded image for the next turn. Returns (state, canvas, status)."""
        state, session = self._session(state)
        if not path:
            return state, self.canvas(state, session), "no file arrived; choose an image again"
        name = Path(str(path)).name
        try:
            image = open_upload(path, name)
        except UsageError as error:
            return state, self.canvas(state, session), f"**Upload refused:** {_escape(error)}"
        state.upload, state.upload_name = image, name
        return (state, self.canvas(state, session),
                f"uploaded {_escape(name)} ({image.width}x{image.height}); the next request "
                "works on it")


# --- the Gradio page ---------------------------------------------------------------------------

def build_app(atelier):
    """The page's gr.Blocks over one Atelier."""
    import gradio as gr

    page = Page(atelier)
    with gr.Blocks(title="Atelier", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as app:
        state = gr.State(None)
        gr.Markdown("## Atelier\nSay what to draw or change. Paint over the image to change "
                    "only that region; upload an image to work on your own.")
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=460, elem_id="chat",
                                  feedback_options=None, buttons=[])
                with gr.Row():
                    request = gr.Textbox(label="Request", placeholder=EXAMPLES[0], scale=4,
                                         max_length=2000, elem_id="request", submit_btn=False)
                    # Text, not a number box: a number box shows 0 when blank.
                    seed = gr.Textbox(label="Seed (blank: random)", max_length=12, scale=1,
                                      elem_id="seed")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    undo = gr.Button("Undo", elem_id="undo")
                    redo = gr.Button("Redo", elem_id="redo")
                    upload = gr.UploadButton("Upload image", file_types=[".png", ".jpg", ".jpeg",
                                                                         ".webp"],
                                             type="filepath", elem_id="upload")
                status = gr.Markdown(elem_id="status")
                gr.Examples([[e] for e in EXAMPLES], inputs=[request], label="Try")
            with gr.Column(scale=2):
                canvas = gr.ImageEditor(
                    label="Current image (paint to mark a region)", type="pil",
                    image_mode="RGBA", format="png", sources=(), transforms=(), layers=False,
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=12),
                    interactive=True, elem_id="canvas")
                with gr.Accordion("Rationale", open=True):
                    rationale = gr.Markdown(elem_id="rationale")
                with gr.Accordion("Plan", open=True):
                    plan = gr.Markdown(elem_id="plan")
                with gr.Accordion("Retrieved exemplars", open=False):
                    exemplars = gr.Gallery(columns=4, height=200, format="png",
                                           elem_id="exemplars", interactive=False)
                with gr.Accordion("Checks", open=True):
                    checks = gr.Markdown(elem_id="checks")

        turn = dict(fn=page.send, inputs=[state, request, canvas, seed],
                    outputs=[state, chat, canvas, status, plan, rationale, exemplars, checks,
                             request],
                    concurrency_limit=1, concurrency_id="turn")
        send.click(api_name="send", **turn)
        request.submit(api_name=False, **turn)
        undo.click(lambda s: page.move(s, "undo"), inputs=[state],
                   outputs=[state, chat, canvas, status], api_name="undo")
        redo.click(lambda s: page.move(s, "redo"), inputs=[state],
                   outputs=[state, chat, canvas, status], api_name="redo")
        upload.upload(page.upload, inputs=[state, upload], outputs=[state, canvas, status],
                      api_name="upload")
    app.queue(max_size=MAX_QUEUE, default_concurrency_limit=4)
    return app


class LocalFilesOnly:
    """ASGI middleware refusing `/file=<URL>`: Gradio would fetch any public URL for whoever
    asks, and this page serves nothing but the store's files."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            _, marker, rest = scope.get("path", "").partition("/file=")
            if marker and "://" in rest:
                from starlette.responses import PlainTextResponse

                refusal = PlainTextResponse("only the store's files are served", status_code=403)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _warm_up(atelier) -> None:
    try:
        atelier.warm_up()
    except Exception as error:  # the first turn meets the same error and reports it there
        log.warning("loading the models ahead of the first turn failed: %s", error)


@dataclass
class Server:
    app: Any
    url: str
    _previous_temp: str | None

    def close(self) -> None:
        self.app.close()
        if self._previous_temp is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = self._previous_temp


def serve(atelier, host: str = "127.0.0.1", port: int | None = 7860) -> Server:
    """Start the page in background threads; returns once it listens."""
    import gradio as gr

    home = Path(atelier.home).resolve()
    previous = os.environ.get("GRADIO_TEMP_DIR")
    # Gradio reads its cache folder from the environment when components are built; keeping it
    # in ATELIER_HOME keeps everything the page serves beside the store.
    os.environ["GRADIO_TEMP_DIR"] = str(home / WEB_DIR)
    app = build_app(atelier)
    # System fonts: the page loads nothing from outside the machine.
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    from starlette.middleware import Middleware

    # Models load while the page comes up, not in the first person's turn.
    threading.Thread(target=_warm_up, args=(atelier,), name="atelier-warm-up",
                     daemon=True).start()
    app.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True,
               prevent_thread_lock=True, show_error=False,
               allowed_paths=[str(home / "images")], max_file_size=MAX_UPLOAD_BYTES,
               app_kwargs={"middleware": [Middleware(LocalFilesOnly)]},
               # Each page's state (its chat, a waiting upload) is held in memory: bounded.
               state_session_capacity=MAX_PAGES,
               theme=theme, ssr_mode=False, mcp_server=False, pwa=False)
    return Server(app, app.local_url, previous)
