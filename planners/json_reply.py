"""A chat model's reply: the JSON object inside its text, and that object read as a plan.
Apart from the LangChain planner, so scripts that score a model's replies
(training/planner.py) need no LangChain."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from pipelines.spec import OpSpec

    from .context import PlanningContext
    from .plan import PlannerOperation, PlanResult


def parse_json_reply(text: str) -> tuple[dict | None, str | None]:
    """The JSON object in a model's text reply: the whole text, a ```json fence, or the
    first balanced {...}; or None and why not."""
    text = text.strip()
    candidates = [text]
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fence:
        candidates.insert(0, fence.group(1).strip())
    start = text.find("{")
    if start >= 0:
        depth, in_string, escape = 0, False, False
        for index, char in enumerate(text[start:], start):
            if in_string:
                escape = (char == "\\") and not escape
                if char == '"' and not escape:
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    candidates.append(text[start:index + 1])
                    break
    last_error = None
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError as error:
            last_error = error
            continue
        if isinstance(data, dict):
            return data, None
    if last_error is None:
        return None, "the reply has no JSON object; reply with one JSON object"
    return None, (f"the reply is not valid JSON ({last_error.msg} at line {last_error.lineno} "
                  f"column {last_error.colno}); reply with one JSON object")


def read_reply(data, request: str, context: "PlanningContext | None",
               operations: "Mapping[str, OpSpec] | None" = None,
               planner_operations: "Mapping[str, PlannerOperation] | None" = None
               ) -> "PlanResult":
    """A model's reply (parsed from JSON) as a plan: a clarify reply becomes NotUnderstood;
    steps of `planner_operations` (a domain's, such as edit_objects) are expanded into
    registered operations; the plan is validated against the registry. Raises PlanError with
    words for the model."""
    from .plan import NotUnderstood, validate_plan

    if isinstance(data, dict) and data.get("action") == "clarify":
        question = str(data.get("question") or data.get("rationale") or "").strip()
        return NotUnderstood(request=request,
                             message=question or "the model could not plan this request")
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "question"}
    for operation in (planner_operations or {}).values():
        data = operation.expand(data, context)
    return validate_plan(data, context, operations)
