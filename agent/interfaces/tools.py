"""Atelier's operations as LangChain tools, for other agents to call.

    from agent.api import Atelier
    from agent.interfaces.tools import operation_tools

    tools = operation_tools(Atelier().session("agent"))
    chat_model.bind_tools(tools)

One `StructuredTool` per registered operation, its argument schema the operation's own
(`pipelines.spec`) plus `inputs`, the session image ids it reads. A call runs as a one-step
turn of the session, through the same validation, id resolution, checks and corrections as a
planned turn, and is stored like one. The tool answers the calling model in words (the new
image's id and how its check went) and hands the whole TurnResult over as the message's
artifact. Arguments the schema refuses come back to the model as one line naming each bad
argument, not as an exception.
"""
from __future__ import annotations

from typing import Mapping

from pydantic import Field, ValidationError, create_model

from pipelines.spec import OPERATIONS, ImageId, OpSpec, explain


def tool_schema(spec: OpSpec):
    """The operation's argument schema with `inputs` added."""
    return create_model(
        f"{spec.args_schema.__name__}Tool", __base__=spec.args_schema,
        inputs=(list[ImageId], Field(default_factory=list, max_length=8,
                                     description="session image ids this operation reads; "
                                                 "empty: the current image")))


def describe(spec: OpSpec) -> str:
    needs = f" Needs: {', '.join(sorted(spec.needs))}." if spec.needs else ""
    return (f"{spec.description}{needs} Images are named by id (img_3); the result becomes "
            "the session's current image.")


def summary(result) -> str:
    """The turn in words for the calling model."""
    if not result.ok:
        return f"failed: {result.error}"
    image = result.image.id if result.image is not None else "none"
    if result.checks_passed is True:
        check = "its check passed"
    elif result.checks_passed is False:
        check = f"its check still fails: {(result.note or 'see the events')[:300]}"
    else:
        check = "it was not checked"
    return f"made {image}; {check}. The current image is {image}."


def operation_tools(session, operations: Mapping[str, OpSpec] | None = None) -> list:
    """One StructuredTool per operation, each running in `session`."""
    from langchain_core.tools import StructuredTool

    tools = []
    for name, spec in (operations or OPERATIONS).items():
        tools.append(StructuredTool.from_function(
            func=_runner(session, name),
            name=name,
            description=describe(spec),
            args_schema=tool_schema(spec),
            response_format="content_and_artifact",
            handle_validation_error=_explain,
        ))
    return tools


def _explain(error: ValidationError) -> str:
    return f"invalid arguments: {explain(error)}"


def _runner(session, op: str):
    def run(inputs: list[str] | None = None, **args):
        from planners.plan import Plan, Step

        plan = Plan(rationale=f"{op} called as a tool",
                    steps=[Step(op=op, args=args, inputs=list(inputs or []),
                                reason="tool call")])
        result = session.run_plan(plan, request=f"{op} tool call")
        return summary(result), result

    run.__name__ = op
    return run
