"""Planner accuracy on tests/data/planner_cases.jsonl, per split and per case source.

    python -m bench.planner                      # the RulePlanner
    python -m bench.planner --failures 20        # and the first 20 failures with reasons
    python -m bench.planner --choices move=edit  # re-measure another operation choice
    python -m bench.planner --llm ollama:qwen2.5 # an LLM planner (needs the llm extra)
    python -m bench.planner --llm ... --cassette run.json   # record once, replay after

As a suite of `python -m bench`: the rule planner on both splits, the held-out one ("heldout":
phrasing families, edit styles and sentence frames the planner was not written against, and
hand-written unusual requests) as the headline.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "planner_cases.jsonl"
TITLE = "Planner accuracy on phrasings it was not written against"
KIND = "quality"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.planner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--split", choices=("main", "heldout"), default=None)
    parser.add_argument("--llm", default=None, help="an LLM planner: openai:M, ollama:M, hf:ID")
    parser.add_argument("--cassette", type=Path, default=None,
                        help="record LLM replies here, or replay them when the file exists")
    parser.add_argument("--choices", nargs="*", default=[], metavar="KIND=OP",
                        help="override RulePlanner operation choices, e.g. move=edit")
    parser.add_argument("--decoding", choices=("structured", "free"), default="structured",
                        help="with --llm: the model's structured output (for hf: models, "
                             "decoding under the plan's schema) or free text read as JSON")
    parser.add_argument("--failures", type=int, default=0, metavar="N",
                        help="print the first N failures")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from world.planning.evaluate import load_cases

    cases = load_cases(args.cases)
    if args.split:
        cases = [c for c in cases if c.split == args.split]
    planner = build_planner(args)
    figures, reports = measure(planner, cases)
    shown = 0
    for split, report in reports.items():
        if not args.json:
            split_figures = figures["splits"][split]
            print(f"{split:8s} {report.passed}/{report.total} = {100 * report.rate:.1f}%  "
                  f"({split_figures['ms_per_case']:.1f} ms/case)  "
                  + (f"first reply valid {100 * split_figures['first_reply_valid']:.1f}%  "
                     if "first_reply_valid" in split_figures else "")
                  + "  ".join(f"{s} {v}" for s, v in split_figures["by_source"].items()))
        for case, problems in report.failures:
            if shown >= args.failures:
                break
            shown += 1
            print(f"  FAIL {case.id} [{case.source}] {case.request!r}")
            for problem in problems:
                print(f"       - {problem}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


def measure(planner, cases) -> tuple[dict, dict]:
    """(figures per split, the evaluation report per split)."""
    from world.planning.evaluate import evaluate

    figures = {"planner": getattr(planner, "name", type(planner).__name__), "splits": {}}
    reports = {}
    for split in ("main", "heldout"):
        subset = [c for c in cases if c.split == split]
        if not subset:
            continue
        start = time.perf_counter()
        report = reports[split] = evaluate(planner, subset)
        elapsed = time.perf_counter() - start
        by_source = Counter(c.source.split(":")[0] for c in subset)
        failed_by_source = Counter(c.source.split(":")[0] for c, _ in report.failures)
        figures["splits"][split] = {
            "cases": report.total, "passed": report.passed, "rate": round(report.rate, 4),
            "ms_per_case": round(1000 * elapsed / report.total, 2),
            "by_source": {s: f"{n - failed_by_source[s]}/{n}" for s, n in sorted(by_source.items())},
        }
        if report.first_valid is not None:  # an LLM planner: valid first replies, time per plan
            figures["splits"][split]["first_reply_valid"] = round(report.first_valid / report.total, 4)
            figures["splits"][split]["s_per_plan"] = round(elapsed / report.total, 3)
    return figures, reports


def run(context) -> dict:
    """The suite: every case (planning is cheap, so quick runs take them all too)."""
    from bench.harness import percent, row
    from world.planning.evaluate import load_cases
    from world.planning.rules import RulePlanner

    figures, reports = measure(RulePlanner(), load_cases(CASES))
    splits = figures["splits"]
    held, main = splits["heldout"], splits["main"]
    figures["summary"] = [
        row("held-out phrasings planned right", held["rate"], unit="%",
            baseline=main["rate"], baseline_label="phrasings it was written against",
            note=f"{held['cases']} held-out cases"),
    ]
    figures["tables"] = [{
        "title": "Rule planner, per split and case source",
        "columns": ["split", "cases", "right", "ms per case", "by source"],
        "rows": [[name, s["cases"], percent(s["rate"]), s["ms_per_case"],
                  ", ".join(f"{k} {v}" for k, v in s["by_source"].items())]
                 for name, s in splits.items()],
    }]
    figures["failures"] = [{"id": case.id, "source": case.source, "request": case.request,
                            "problems": problems[:3]}
                           for case, problems in reports["heldout"].failures[:20]]
    return figures


def build_planner(args):
    if args.llm:
        from planners.llm import LLMPlanner
        from world.planning.notes import llm_options
        from planners.providers import chat_model

        from planners.cassette import CassetteChatModel
        from planners.providers import ProviderError

        try:
            model = chat_model(args.llm)
        except ProviderError:
            if not (args.cassette and args.cassette.is_file()):
                raise
            return LLMPlanner(CassetteChatModel.replay(args.cassette),  # offline replay
                              **llm_options())
        if args.cassette:
            model = CassetteChatModel.wrap(model, args.cassette)
        structured = None if getattr(args, "decoding", "structured") == "structured" else False
        return LLMPlanner(model, structured=structured, **llm_options())
    from world.planning.rules import RulePlanner

    choices = dict(item.split("=", 1) for item in args.choices)
    return RulePlanner(choices)


if __name__ == "__main__":
    raise SystemExit(main())
