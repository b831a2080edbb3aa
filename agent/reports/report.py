"""A session's turns written for people: a contact sheet (one captioned tile per turn) and a
self-contained HTML report (per turn: request, rationale, plan, exemplars, image, checks and
corrections), with every image embedded so the file can be mailed or opened anywhere.

    turns = [TurnView.from_result(n, result) for n, result in enumerate(results, 1)]
    write_contact_sheet(turns, out / "contact_sheet.png")
    write_html(turns, out / "report.html", title="Atelier demo")
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

TILE = 256                  # the image part of a tile, pixels
CAPTION_LINES = 4
LINE_HEIGHT = 16
CAPTION_HEIGHT = CAPTION_LINES * LINE_HEIGHT + 8
GAP = 8
MAX_COLUMNS = 5
SHEET_BACKGROUND = (255, 255, 255)
EMPTY_TILE = (230, 230, 230)
VERDICT_COLOURS = {"passed": (30, 130, 50), "failed": (190, 40, 40), "none": (90, 90, 90)}


@dataclass
class TurnView:
    """What the report shows of one turn, read from the turn's events."""

    number: int
    request: str
    ok: bool
    note: str | None = None
    error: str | None = None
    error_kind: str | None = None
    plans: list[dict] = field(default_factory=list)      # round, observation, steps
    ops: list[str] = field(default_factory=list)         # operations run, in order, once each
    exemplars: list[dict] = field(default_factory=list)  # step, query, hits
    checks: list[dict] = field(default_factory=list)     # one per attempt
    corrections: list[dict] = field(default_factory=list)
    checks_passed: bool | None = None
    failures: tuple[str, ...] = ()
    image_id: str | None = None
    image_path: Path | None = None                       # the turn's result; None if none
    reading: str = ""                                    # what the detector reads in it
    seconds: float = 0.0

    @classmethod
    def from_result(cls, number: int, result, note: str | None = None) -> "TurnView":
        """From an agent.sessions.session.TurnResult."""
        from agent.turn.events import (CheckResult, Correction, ExemplarsRetrieved, ImageMade,
                                  PlanMade, StepStarted, TurnDone)

        view = cls(number, result.request, result.ok, note, result.error,
                   result.error_kind, checks_passed=result.checks_passed,
                   seconds=result.seconds)
        made = {}
        readings = {record.id: record.caption or "" for record in result.images}
        for event in result.events:
            if isinstance(event, PlanMade):
                view.plans.append({
                    "round": event.round, "observation": event.observation,
                    "repeated": event.repeated, "rationale": event.plan.rationale,
                    "steps": [{"op": s.op, "call": s.summary(), "reason": s.reason}
                              for s in event.plan.steps]})
            elif isinstance(event, StepStarted) and event.op not in view.ops:
                view.ops.append(event.op)
            elif isinstance(event, ExemplarsRetrieved):
                view.exemplars.append({"step": event.step, "query": event.query,
                                       "hits": list(event.hits)})
            elif isinstance(event, ImageMade):
                made[event.image_id] = event
            elif isinstance(event, CheckResult):
                image = made.get(event.image_id)
                view.checks.append({
                    "image_id": event.image_id, "path": image.path if image else None,
                    "op": image.op if image else "", "seed": image.seed if image else None,
                    "step": event.step, "attempt": event.attempt, "round": event.round,
                    "passed": event.passed, "method": event.method,
                    "reading": readings.get(event.image_id, ""),
                    "failures": list(event.failures)})
            elif isinstance(event, Correction):
                view.corrections.append({"step": event.step, "attempt": event.attempt,
                                         "strategy": event.strategy, "op": event.op,
                                         "reason": event.reason})
            elif isinstance(event, TurnDone):
                view.failures = event.failures
                if event.action == "run" and event.image_id in made:
                    view.image_id = event.image_id
                    view.image_path = Path(made[event.image_id].path)
                    view.reading = readings.get(event.image_id, "")
        return view

    @property
    def verdict(self) -> str:
        """"passed", "failed" or "none" (not judged, or no image)."""
        if not self.ok or self.image_path is None or self.checks_passed is None:
            return "none"
        return "passed" if self.checks_passed else "failed"

    def verdict_words(self) -> str:
        if not self.ok:
            return ("not understood" if self.error_kind == "not_understood"
                    else f"failed ({self.error_kind})")
        if self.image_path is None:
            return "no new image"
        return {True: "checks passed", False: "checks failed",
                None: "not checked"}[self.checks_passed]


# --- contact sheet --------------------------------------------------------------------------

def _font(size: int = 13):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1 has only its fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: int, lines: int) -> list[str]:
    """Up to `lines` lines of at most `width` pixels; the last one ends in "..." if cut."""
    words = text.split()
    out: list[str] = []
    current = ""
    for word in words:
        trial = f"{current} {word}".strip()
        if font.getlength(trial) <= width or not current:
            current = trial
            continue
        out.append(current)
        current = word
    if current:
        out.append(current)
    if len(out) > lines:
        last = out[lines - 1]
        while last and font.getlength(last + "...") > width:
            last = last[:-1]
        out = out[:lines - 1] + [last.rstrip() + "..."]
    return out


def sheet_grid(count: int) -> tuple[int, int]:
    """(columns, rows) of a sheet with `count` tiles."""
    rows = max(1, -(-count // MAX_COLUMNS))
    return max(1, -(-count // rows)), rows  # rows as even as they can be


def tile_box(index: int, count: int) -> tuple[int, int, int, int]:
    """The image area of tile `index` (0-based) on a sheet of `count` tiles."""
    columns, _ = sheet_grid(count)
    column, row = index % columns, index // columns
    left = GAP + column * (TILE + GAP)
    top = GAP + row * (TILE + CAPTION_HEIGHT + GAP)
    return left, top, left + TILE, top + TILE


def write_contact_sheet(turns: list[TurnView], path: Path) -> Path:
    """One tile per turn, in order: its image (a gray square when the turn made none) and a
    caption with the turn's number, operations, request and verdict."""
    from PIL import Image, ImageDraw

    from agent.sessions.image_files import open_rgb

    columns, rows = sheet_grid(len(turns))
    size = (GAP + columns * (TILE + GAP), GAP + rows * (TILE + CAPTION_HEIGHT + GAP))
    sheet = Image.new("RGB", size, SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for index, turn in enumerate(turns):
        left, top, right, bottom = tile_box(index, len(turns))
        if turn.image_path is not None:
            # Nearest neighbour keeps the flat shapes' edges as the model drew them.
            sheet.paste(open_rgb(turn.image_path).resize((TILE, TILE), Image.NEAREST),
                        (left, top))
        else:
            draw.rectangle((left, top, right - 1, bottom - 1), fill=EMPTY_TILE)
            draw.text((left + TILE // 2, top + TILE // 2), "no new image", fill=(90, 90, 90),
                      font=font, anchor="mm")
        heading = f"{turn.number}. {', '.join(turn.ops) or 'no operation'}"
        lines = [heading, *_wrap(turn.request, font, TILE, CAPTION_LINES - 2)]
        y = bottom + 4
        for line in lines:
            draw.text((left, y), line, fill=(20, 20, 20), font=font)
            y += LINE_HEIGHT
        draw.text((left, y), turn.verdict_words(), fill=VERDICT_COLOURS[turn.verdict],
                  font=font)
    path = Path(path)
    sheet.save(path, format="PNG")
    return path


# --- HTML ---------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
section { border-top: 1px solid #ccc; padding: 1em 0; }
.turn { display: flex; gap: 1.5em; align-items: flex-start; }
.turn > div { flex: 1; min-width: 0; }
img { image-rendering: pixelated; }
.main { width: 256px; height: 256px; border: 1px solid #ccc; }
.thumb { width: 96px; height: 96px; border: 1px solid #ccc; vertical-align: middle; }
.empty { width: 256px; height: 256px; background: #e6e6e6; display: flex;
         align-items: center; justify-content: center; color: #555; }
.passed { color: #1e8232; } .failed { color: #be2828; } .none { color: #555; }
code { white-space: pre-wrap; word-break: break-word; font-size: 0.9em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.6em; text-align: left;
vertical-align: middle; border-bottom: 1px solid #eee; }
.note { background: #fff6d6; padding: 0.4em 0.6em; }
"""


def _data_uri(path: str | Path | None) -> str | None:
    """The image as a PNG data URI (pixels only, no text chunks), or None if it cannot be
    read. The page scales it, so it is embedded at its own size."""
    if path is None:
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(path, css: str, alt: str) -> str:
    uri = _data_uri(path)
    if uri is None:
        return f'<span class="none">({html.escape(alt)}: image not found)</span>'
    return f'<img class="{css}" src="{uri}" alt="{html.escape(alt, quote=True)}">'


def _turn_html(turn: TurnView) -> str:
    e = html.escape
    parts = [f'<section id="turn-{turn.number}">',
             f"<h2>Turn {turn.number}: {e(turn.request)}</h2>"]
    if turn.note:
        parts.append(f'<p class="note">{e(turn.note)}</p>')
    parts.append('<div class="turn">')
    if turn.image_path is not None:
        parts.append(_img(turn.image_path, "main", f"turn {turn.number}: {turn.image_id}"))
    else:
        parts.append('<div class="empty">no new image</div>')
    parts.append("<div>")
    parts.append(f'<p><b>Result:</b> <span class="{turn.verdict}">{e(turn.verdict_words())}'
                 f"</span>" + (f" ({e(turn.image_id)})" if turn.image_id else "")
                 + f"; operations run: {e(', '.join(turn.ops) or 'none')}; "
                 f"{turn.seconds:.1f} s</p>")
    if turn.reading:
        parts.append(f"<p><b>The detector reads:</b> {e(turn.reading)}</p>")
    if turn.error:
        parts.append(f"<p><b>Planner:</b> {e(turn.error)}</p>")
    if turn.failures and turn.ok:
        parts.append(f'<p class="failed">Still failing: {e("; ".join(turn.failures))}</p>')
    for plan in turn.plans:
        label = "Plan" if plan["round"] == 1 else f"Re-plan (round {plan['round']})"
        if plan["observation"]:
            parts.append(f"<p><b>Re-planned after:</b> {e(plan['observation'])}</p>")
        if plan["repeated"]:
            parts.append("<p>The planner gave the same plan again; it was not run twice.</p>")
            continue
        parts.append(f"<p><b>Rationale:</b> {e(plan['rationale'])}</p>")
        parts.append(f"<p><b>{label}:</b></p><ol>")
        for step in plan["steps"]:
            reason = f" <i>{e(step['reason'])}</i>" if step["reason"] else ""
            parts.append(f"<li><code>{e(step['call'])}</code>{reason}</li>")
        parts.append("</ol>")
    for found in turn.exemplars:
        parts.append(f"<p><b>Exemplars</b> for step {found['step']}, retrieved for "
                     f"&ldquo;{e(found['query'])}&rdquo;:</p><table>")
        for hit in found["hits"] or []:
            parts.append(f"<tr><td>{_img(hit['path'], 'thumb', hit['id'])}</td>"
                         f"<td>{e(hit['id'])}</td><td>score {hit['score']:.3f}</td>"
                         f"<td>{e(hit['caption'])}</td></tr>")
        if not found["hits"]:
            parts.append("<tr><td>none found</td></tr>")
        parts.append("</table>")
    if turn.checks:
        parts.append("<p><b>Checks</b> (every attempt):</p><table><tr><th></th><th>image</th>"
                     "<th>step</th><th>attempt</th><th>operation</th><th>check</th></tr>")
        for check in turn.checks:
            if check["passed"] is None:
                state, words = "none", f"not judged ({check['method']})"
            elif check["passed"]:
                state, words = "passed", f"passed ({check['method']})"
            else:
                state, words = "failed", (f"failed ({check['method']}): "
                                          + "; ".join(check["failures"]))
            if check["reading"]:
                words += f". Reads: {check['reading']}"
            chosen = " (result)" if check["image_id"] == turn.image_id else ""
            parts.append(f"<tr><td>{_img(check['path'], 'thumb', check['image_id'])}"
                         f"</td><td>{e(check['image_id'])}{chosen}</td><td>{check['step']}</td>"
                         f"<td>{check['attempt']}</td><td>{e(check['op'])}</td>"
                         f'<td class="{state}">{e(words)}</td></tr>')
        parts.append("</table>")
    if turn.corrections:
        parts.append("<p><b>Corrections:</b></p><ul>")
        for fix in turn.corrections:
            parts.append(f"<li>step {fix['step']}, attempt {fix['attempt']}: "
                         f"{e(fix['strategy'])} ({e(fix['op'])}): {e(fix['reason'])}</li>")
        parts.append("</ul>")
    parts.append("</div></div></section>")
    return "\n".join(parts)


def write_html(turns: list[TurnView], path: Path, *, title: str,
               facts: dict[str, str] | None = None, sheet: str | None = None) -> Path:
    """The report as one HTML file. `facts` are shown as a table at the top (session, models,
    seed ...); `sheet` is the contact sheet's file name beside the report, linked from it."""
    e = html.escape
    judged = [t for t in turns if t.verdict != "none"]
    passed = sum(t.verdict == "passed" for t in judged)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>{len(turns)} turns; checks passed in {passed} of the {len(judged)} turns "
             "that made a checked image.</p>"]
    if facts:
        parts.append("<table>")
        for name, value in facts.items():
            parts.append(f"<tr><th>{e(name)}</th><td>{e(str(value))}</td></tr>")
        parts.append("</table>")
    if sheet:
        parts.append(f'<p><a href="{e(sheet, quote=True)}">Contact sheet</a></p>')
    parts.extend(_turn_html(turn) for turn in turns)
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path

