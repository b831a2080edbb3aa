"""Does an image do what its step meant?

A checker turns a step into an `Expectation` before the step runs (it may look at the input
image), then judges each image the step makes against it:

- a domain's own checker (agent/domains), such as the shapes world's `WorldChecker`
  (world/checking.py), which reads each image back with the world's detector;
- `ClipChecker`, for any model set with a CLIP: similarity between the image and the step's
  text;
- `NoChecker`: nothing to judge with; every image passes unjudged (`passed` None).

Checkers never raise for what an image shows: an unreadable step gives no expectation, an
unreadable image a failed verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

@dataclass(frozen=True)
class Reading:
    """What a checker reads from an image, for the planner: a scene (JSON) and a caption."""

    scene: dict | None = None
    caption: str = ""


@dataclass(frozen=True)
class Expectation:
    about: str                               # what is expected, in words, for logs
    constraints: tuple = ()                  # what the domain's checker tests
    text: str | None = None                  # what a CLIP checker compares with
    # Phrases a checker reads besides those it tests (the objects the image had before the
    # step), so that its reading of the result lists the whole scene for the next turn.
    read_also: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    passed: bool | None
    method: str
    failures: tuple[str, ...] = ()
    score: float | None = None
    # Kinds of the constraints that failed: count, attribute, place, relation, background,
    # preserved. A correction picks its strategy from them.
    kinds: frozenset[str] = frozenset()
    reading: Reading = field(default_factory=Reading)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "method": self.method, "failures": list(self.failures),
                "score": self.score, "kinds": sorted(self.kinds)}

    @property
    def rank(self) -> tuple:
        """Smaller is better: passed first, then fewer failures, then a higher score."""
        return (self.passed is False, len(self.failures), -(self.score or 0.0))


class Checker(Protocol):
    method: str

    def read(self, image) -> Reading: ...

    # `scene`: the stored reading of `before` (Reading.scene), where the session has one.
    def expect(self, step, before, scene: dict | None = None) -> Expectation | None: ...

    def judge(self, image, expectation: Expectation | None) -> Verdict: ...


class NoChecker:
    method = "none"

    def read(self, image) -> Reading:
        return Reading()

    def expect(self, step, before, scene: dict | None = None) -> Expectation | None:
        return None

    def judge(self, image, expectation: Expectation | None) -> Verdict:
        return Verdict(None, self.method)


# --- any model: CLIP ----------------------------------------------------------------------

def step_text(step) -> str | None:
    args = step.args
    for name in ("prompt", "target_prompt", "instruction"):
        text = getattr(args, name, None)
        if text:
            return text
    if step.op == "layout":
        return "; ".join(o.phrase for o in args.objects)
    return None


class ClipChecker:
    """CLIP similarity between the image and the step's text, passed at `threshold` or more.
    `load` returns (model, preprocess, tokenizer) as open_clip makes them; it is called once,
    on the first judgement."""

    method = "clip"

    def __init__(self, load: Callable[[], tuple], threshold: float = 0.2):
        from pipelines.once import Once

        self._load = load
        self._model: Once[tuple] = Once()
        self.threshold = threshold

    def read(self, image) -> Reading:
        return Reading()

    def expect(self, step, before, scene: dict | None = None) -> Expectation | None:
        text = step_text(step)
        return None if text is None else Expectation(about=text, text=text)

    def score(self, image, text: str) -> float:
        import torch

        model, preprocess, tokenizer = self._model.get(self._load)
        device = next(model.parameters()).device
        with torch.no_grad():
            pixels = preprocess(image.convert("RGB")).unsqueeze(0).to(device)
            image_vector = model.encode_image(pixels)
            text_vector = model.encode_text(tokenizer([text]).to(device))
            image_vector = image_vector / image_vector.norm(dim=-1, keepdim=True)
            text_vector = text_vector / text_vector.norm(dim=-1, keepdim=True)
            return float((image_vector * text_vector).sum())

    def judge(self, image, expectation: Expectation | None) -> Verdict:
        if expectation is None or expectation.text is None:
            return Verdict(None, self.method)
        score = round(self.score(image, expectation.text), 4)
        passed = score >= self.threshold
        failures = () if passed else (
            f"CLIP similarity {score:.3f} to {expectation.text!r} is below {self.threshold}",)
        return Verdict(passed, self.method, failures, score=score,
                       kinds=frozenset() if passed else frozenset({"similarity"}))
