"""`atelier web`: the conversation as a page in the browser (Gradio, from the `web` extra)."""
from __future__ import annotations

import argparse

from agent.interfaces.commands.arguments import whole_number
from agent.interfaces.commands.run import add_planner_options
from agent.errors import UsageError

# The page decodes no image above this many pixels (PIL refuses it from its header); the
# upload check's own limit, 1024 x 1024, is well inside it.
MAX_DECODE_PIXELS = 2048 * 2048


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "web", help="serve the conversation as a page in the browser",
        description="Serve a page where each browser session is its own conversation: chat "
                    "with images, upload an image, paint a region to change, undo and redo, "
                    "and see each turn's plan, rationale, exemplars and checks. Sessions are "
                    "kept in ATELIER_HOME like those of `atelier chat`.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; "
                             "0.0.0.0 serves the local network)")
    parser.add_argument("--port", type=port_number, default=7860,
                        help="port to listen on (default: 7860)")
    parser.add_argument("--share", choices=("off",), default="off",
                        help="Gradio's public share links (a tunnel through Gradio's servers) "
                             "stay off; --host decides who can reach the page")
    add_planner_options(parser)
    parser.set_defaults(func=web_command)


def port_number(text: str) -> int:
    return whole_number(text, 1, 65535)


def web_command(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise UsageError("the web page needs Gradio; install it with pip install -e '.[web]'")
    from PIL import Image

    from agent.api import Atelier
    from agent.interfaces.web import serve

    Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS // 2  # PIL raises at twice this, warns above it
    atelier = Atelier(llm=args.llm, models=args.models, domain=args.domain,
                      llm_images=args.llm_images)
    atelier.planner()  # a bad --llm fails here, before the page is up
    try:
        server = serve(atelier, args.host, args.port)
    except OSError as error:
        why = f" ({error.strerror})" if error.strerror else ""
        raise UsageError(f"cannot listen on {args.host}:{args.port}{why}; another program may "
                         "be using the port, so choose another --port") from None
    print(f"Atelier on {server.url} (sessions in {atelier.home}); Ctrl-C stops it", flush=True)
    try:
        server.app.block_thread()  # until Ctrl-C, which Gradio turns into closing the server
    finally:
        # Gradio's Ctrl-C closes only the HTTP server; its queue and heartbeats close here, so
        # that no thread of theirs holds the process open.
        server.close()
    return 0
