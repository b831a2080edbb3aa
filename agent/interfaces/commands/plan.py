"""`atelier plan "request"`: print the plan for a request without running it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.interfaces.commands.run import add_planner_options
from agent.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan", help="print the plan for a request without running it",
        description="Plan a request and print the plan (its reasoning and steps). Without "
                    "--llm the offline rule planner plans.")
    parser.add_argument("request", help="what to draw or change, in plain words")
    add_planner_options(parser)
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
    from planners.context import ImageInfo, PlanningContext

    if args.session:
        if args.scene or args.image:
            raise UsageError("--session plans on the session's own current image; drop "
                             "--scene and --image, or drop --session")
        from agent.api import Atelier

        with Atelier(models=args.models, domain=args.domain) as atelier:
            return atelier.session(args.session, create=False).planning_context(request)
    domain = chosen_domain(args)
    if args.scene or args.image:
        if domain.scene_reading is None:
            raise UsageError(f"the {domain.name} domain reads no scenes; drop --scene and "
                             "--image, or choose a domain that reads them (--domain)")
    png, caption = None, ""
    if args.scene:
        import json

        try:
            data = json.loads(args.scene)
            scene = domain.scene_reading(data)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise UsageError(f"--scene: {error}") from None
        caption = domain.caption(data) if domain.caption is not None else ""
    elif args.image:
        import io

        from agent.sessions.image_files import open_rgb

        image = open_rgb(args.image)
        reading = domain.make_checker(lambda: None).read(image)
        if not reading.scene:
            raise UsageError(f"{args.image}: the {domain.name} domain's reader finds no scene "
                             "in it")
        scene, caption = domain.scene_reading(reading.scene), reading.caption
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
    else:
        return PlanningContext()
    return PlanningContext(images=[ImageInfo(id="img_1", caption=caption)],
                           current_image="img_1", scene=scene, current_png=png)


def chosen_domain(args: argparse.Namespace):
    from agent.api import declared_domain
    from agent.domains import choose, get_domain

    return get_domain(choose(args.domain, declared_domain(None)))


def build_planner(args: argparse.Namespace):
    if not args.llm:
        if args.cassette:
            raise UsageError("--cassette records an LLM's replies; use it with --llm")
        return chosen_domain(args).rule_planner()
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
        model = CassetteChatModel.replay(args.cassette)
    else:
        if args.cassette:
            model = CassetteChatModel.wrap(model, args.cassette)
    from agent.api import attach_image

    return LLMPlanner(model, timeout=llm_call_timeout(), attach_image=attach_image(args.llm_images),
                      **chosen_domain(args).llm_options())


def plan_command(args: argparse.Namespace) -> int:
    from agent.errors import AtelierError
    from planners.cassette import CassetteMiss
    from planners.plan import NotUnderstood, PlanError, PlannerUnavailable

    from agent.sessions.session import read_request

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
