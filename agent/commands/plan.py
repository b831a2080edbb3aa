"""`atelier plan "request"`: print the plan for a request without running it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.commands.run import add_llm_option
from agent.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="print the plan for a request without running it",
        description="Plan a request and print the plan (its reasoning and steps). Without "
                    "--llm the offline rule planner plans.")
    parser.add_argument("request", help="what to draw or change, in plain words")
    add_llm_option(parser)
    parser.add_argument("--cassette", type=Path, default=None, metavar="FILE",
                        help="with --llm: record replies to FILE, or replay them from it")
    parser.add_argument("--session", metavar="S", default=None,
                        help="plan in the context of a saved session: its turns, images and "
                             "current image")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--scene", metavar="JSON", default=None,
                        help="the current image as a scene, e.g. from `atelier world detect`")
    source.add_argument("--image", type=Path, metavar="PATH", default=None,
                        help="the current image; its scene is read with the detector")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(func=plan_command)


def build_context(args: argparse.Namespace, request: str):
    from planners.context import PlanningContext

    if args.session:
        if args.scene or args.image:
            raise UsageError("--session plans on the session's own current image; drop "
                             "--scene and --image, or drop --session")
        from agent.api import Atelier

        with Atelier() as atelier:
            return atelier.session(args.session, create=False).planning_context(request)
    if args.scene:
        from world.scene import Scene

        try:
            scene = Scene.from_json(args.scene)
        except (ValueError, TypeError) as error:
            raise UsageError(f"--scene: {error}") from None
        return PlanningContext.from_scene(scene)
    if args.image:
        import io

        from agent.image_files import open_rgb
        from world.detect import detect

        image = open_rgb(args.image)
        try:
            scene = detect(image).scene
        except ValueError as error:
            raise UsageError(f"{args.image}: {error}") from None
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return PlanningContext.from_scene(scene).model_copy(update={"current_png": buffer.getvalue()})
    return PlanningContext()


def build_planner(args: argparse.Namespace):
    if not args.llm:
        if args.cassette:
            raise UsageError("--cassette records an LLM's replies; use it with --llm")
        from planners.rules import RulePlanner

        return RulePlanner()
    from agent.config import llm_call_timeout
    from planners.cassette import CassetteChatModel
    from planners.llm import LLMPlanner
    from planners.providers import ProviderError, chat_model

    try:
        model = chat_model(args.llm)
    except ProviderError as error:
        # A recorded session replays without the provider: no package, key or server needed.
        if not (args.cassette and args.cassette.is_file()):
            raise UsageError(str(error)) from None
        return LLMPlanner(CassetteChatModel.replay(args.cassette), timeout=llm_call_timeout())
    if args.cassette:
        model = CassetteChatModel.wrap(model, args.cassette)
    return LLMPlanner(model, timeout=llm_call_timeout())


def plan_command(args: argparse.Namespace) -> int:
    from agent.errors import AtelierError
    from planners.cassette import CassetteMiss
    from planners.plan import NotUnderstood, PlanError, PlannerUnavailable

    from agent.session import read_request

    request = read_request(args.request)
    context = build_context(args, request)
    planner = build_planner(args)
    try:
        result = planner.plan(request, context)
    except PlanError as error:
        raise AtelierError(f"the planner gave no usable plan: {error}") from None
    except CassetteMiss as error:
        raise UsageError(str(error)) from None
    except PlannerUnavailable as error:
        raise AtelierError(str(error)) from None
    if args.json:
        kind = "not_understood" if isinstance(result, NotUnderstood) else "plan"
        print(json.dumps({"result": kind, **result.model_dump(mode="json")}, indent=2))
    else:
        print(result.describe())
    return 0 if not isinstance(result, NotUnderstood) else 3
