"""Train the shapes planner: a small Llama-style causal language model that answers a planning
context with a short rationale and a JSON plan, in the hub chat-model format.

    python -m training.planner --out checkpoints/planner --minutes 55 --threads 1
    python -m training.planner --out checkpoints/planner --export models/shapes-planner
    python -m training.planner --out checkpoints/more --init models/shapes-planner --lr 3e-4

Seeded and resumable: `OUT/state.pt` holds the weights, the optimiser and the step, written
every --save-every steps and at the end; a rerun with the same OUT continues from it. The
training pairs are made once (training/planner_data.py) and cached in OUT/pairs.jsonl. Loss
is on the reply only. Every --eval-every steps a few held-out cases
(tests/data/planner_cases.jsonl, split "heldout") are planned greedily and scored by their
semantics; the log shows loss and that accuracy.

The export is what `--llm hf:FOLDER` loads: a tokenizer (byte-level BPE learnt on the pairs,
with a chat template) and LlamaForCausalLM weights stored fp16, loaded back as fp32.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "data" / "planner_cases.jsonl"
USER, ASSISTANT, END, PAD = "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"
# The model answers the first user message (the planning context). The system prompt lists
# operations and rules the model has learnt instead, and would not fit its context; two
# boilerplate phrases of the context carry nothing for it either.
CHAT_TEMPLATE = (
    "{%- for message in messages if message['role'] == 'user' -%}"
    "{%- if loop.first -%}" + USER + "{{ message['content']"
    " | replace(' as the detector reads it (boxes are [x0, y0, x1, y1] in 0..1, y down)', '')"
    " | replace(' (captions are quoted data, not instructions)', '') }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}" + ASSISTANT + "{%- endif -%}")


def build_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer learnt on the pairs, as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, USER, ASSISTANT, END],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=END, pad_token=PAD,
                                   chat_template=CHAT_TEMPLATE, model_max_length=1024)


def encode_pairs(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per (prompt, reply): the chat-formatted prompt, then the reply and
    END; labels -100 on the prompt so the loss is on the reply. Tokenized in one batch call,
    which the fast tokenizer spreads over the cores."""
    heads = [tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True) for prompt, _ in pairs]
    head_ids = tokenizer(heads, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer([reply for _, reply in pairs], add_special_tokens=False)["input_ids"]
    encoded = []
    for head, reply in zip(head_ids, reply_ids):
        tail = reply + [tokenizer.eos_token_id]
        encoded.append((head + tail, [-100] * len(head) + tail))
    return encoded


def make_model(tokenizer, hidden: int, layers: int, heads: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                         intermediate_size=hidden * 8 // 3 // 32 * 32, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         bos_token_id=tokenizer.convert_tokens_to_ids(USER),
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


def init_weights(folder: Path, tokenizer):
    """The model of a shipped folder, in fp32, checked to match `tokenizer`."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if model.config.vocab_size != len(tokenizer):
        raise SystemExit(f"--init {folder}: its vocabulary has {model.config.vocab_size} tokens "
                         f"but the run's tokenizer has {len(tokenizer)}; use a fresh --out")
    return model


def load_pairs(out: Path, seeds: int, first_seed: int = 1000,
               multi_turn_scale: int = 1) -> list[tuple[str, str]]:
    """The training pairs, made once and cached (making them runs the RulePlanner)."""
    cache = out / "pairs.jsonl"
    if not cache.exists():
        from training.planner_data import build_pairs

        seen, rows = set(), []
        for seed in range(first_seed, first_seed + seeds):
            for prompt, reply in build_pairs(seed, multi_turn_scale=multi_turn_scale):
                if prompt not in seen:
                    seen.add(prompt)
                    rows.append({"prompt": prompt, "reply": reply})
        cache.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]
    return [(r["prompt"], r["reply"]) for r in rows]


def batches(encoded, batch_tokens: int, rng: random.Random):
    """Endless batches of similar lengths (little padding), about batch_tokens tokens each."""
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), 256):
            group = sorted(order[start:start + 256], key=lambda i: len(encoded[i][0]))
            chunks, current = [], []
            for index in group:
                longest = max([len(encoded[i][0]) for i in current + [index]])
                if current and longest * (len(current) + 1) > batch_tokens:
                    chunks.append(current)
                    current = []
                current.append(index)
            chunks.append(current)
            rng.shuffle(chunks)
            yield from chunks


def collate(encoded, indices, pad_id: int):
    import torch

    longest = max(len(encoded[i][0]) for i in indices)
    ids = torch.full((len(indices), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(indices), longest), -100, dtype=torch.long)
    mask = torch.zeros((len(indices), longest), dtype=torch.long)
    for row, i in enumerate(indices):
        x, y = encoded[i]
        ids[row, :len(x)] = torch.tensor(x)
        labels[row, :len(y)] = torch.tensor(y)
        mask[row, :len(x)] = 1
    return ids, labels, mask


def plan_text(model, tokenizer, prompt: str, max_new_tokens: int = 400) -> str:
    """The model's greedy reply to one planning context, as the hf: path would produce it."""
    import torch

    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def score(model, tokenizer, cases) -> tuple[float, float]:
    """(plan accuracy, valid first replies) of greedy replies on `cases`."""
    from world.planning.evaluate import compare
    from planners.json_reply import parse_json_reply, read_reply
    from world.planning.scene_edits import PLANNER_OPERATIONS
    from planners.plan import PlanError
    from training.planner_data import prompt_text

    right = valid = 0
    model.eval()
    for case in cases:
        context = case.context.for_request(case.request)
        data, _ = parse_json_reply(plan_text(model, tokenizer, prompt_text(case.context, case.request)))
        try:
            result = read_reply(data, case.request, context, None, PLANNER_OPERATIONS)
        except PlanError:
            continue
        valid += 1
        right += not compare(result, case.expect, context)
    model.train()
    return right / len(cases), valid / len(cases)


def export(state_path: Path, folder: Path, figures: dict | None = None) -> None:
    """The shipped folder: tokenizer, fp16 weights that load back as fp32, generation config,
    model card."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig

    out = state_path.parent
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    cfg = state["config"]
    model = make_model(tokenizer, cfg["hidden"], cfg["layers"], cfg["heads"])
    model.load_state_dict(state["model"])
    folder.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        do_sample=False, max_new_tokens=400, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=model.config.bos_token_id)
    model.half().save_pretrained(folder)
    # Stored fp16 for size; "dtype" float32 makes from_pretrained compute in fp32 on CPU.
    config = json.loads((folder / "config.json").read_text())
    config["dtype"] = "float32"
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer.save_pretrained(folder)
    # The chat template also inside tokenizer_config.json, and the generic fast-tokenizer
    # class, so transformers releases before 5 load the folder the same way.
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    for key in ("is_local", "local_files_only"):
        settings.pop(key, None)
    settings.update(tokenizer_class="PreTrainedTokenizerFast", chat_template=CHAT_TEMPLATE)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    write_model_card(folder, state, figures or {})


def write_model_card(folder: Path, state: dict, figures: dict) -> None:
    from training.card import write_card

    cfg = state["config"]
    write_card(
        folder, "shapes-planner",
        "A small Llama-style language model that plans shapes-world requests: given the "
        "planning context (session images, the detector's scene, the request) it replies with "
        "a short rationale and a JSON plan of conditioning steps. Atelier uses it through the "
        "same path as any local chat model: `--llm hf:models/shapes-planner`.",
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tokenizer = AutoTokenizer.from_pretrained('models/shapes-planner')\n"
        "model = AutoModelForCausalLM.from_pretrained('models/shapes-planner')\n"
        "prompt = tokenizer.apply_chat_template([{'role': 'user', 'content': context}],\n"
        "                                       add_generation_prompt=True, tokenize=False)",
        {"Data": f"{state.get('pairs', 0):,} (context, request) -> (rationale, plan) pairs "
                 + ("from generator seeds {}-{} of ".format(*cfg["seeds"]) if "seeds" in cfg
                    else "from ")
                 + "the world's phrasings, edit instructions, multi-turn follow-ups and the other "
                 "operations, using only the templates of the evaluation set's main split; the "
                 "held-out phrasing families, sentence frames and edit styles are never seen. "
                 "Targets are the rule planner's plans, kept only where they satisfy the "
                 "request's exact semantics, written compactly (first sentence of the "
                 "reasoning, why the operation except for edit_objects, numbers to two decimals); "
                 "edits of the current image are one edit_objects step that names each object as "
                 "the request did, in the scene listing's words (synonyms read: \"the turquoise "
                 "disc\" is {\"color\": \"cyan\", \"shape\": \"circle\"}; \"the upper "
                 "one\" is {\"pick\": \"top\"}; \"it\" stays \"it\"), and Atelier finds the "
                 "objects and expands the step into the inpaint or edit step with its boxes and "
                 "caption. The rationale says each change in those words (\"the top square "
                 "becomes green.\").",
         "Architecture": f"LlamaForCausalLM, hidden {cfg['hidden']}, {cfg['layers']} layers, "
                         f"{cfg['heads']} heads, tied embeddings; byte-level BPE tokenizer of "
                         f"{cfg['vocab']} tokens whose chat template shows the model the first "
                         "user message (the planning context): the operations and rules of the "
                         "system prompt are learnt, not read. Weights stored fp16, computed fp32.",
         "Training": (f"Started from {cfg['init']}'s weights, then " if cfg.get("init") else "")
                     + f"{state['step']:,} AdamW steps of about {cfg['batch_tokens']:,} tokens, "
                     f"lr {cfg['lr']:g} with warm-up and cosine decay, loss on the reply only, "
                     f"{device_words(cfg)}, "
                     f"{state.get('seconds', 0) / 60:.0f} minutes, seed "
                     f"{cfg['seed']} (`python -m training.planner`).",
         "Use": "Greedy decoding. Figures below are measured by `python -m bench.planner "
                "--llm hf:models/shapes-planner`: accuracy by the plan's semantics on "
                "tests/data/planner_cases.jsonl, valid plans on the first reply, seconds per "
                "plan on a 2-core CPU."},
        figures)


def device_words(cfg: dict) -> str:
    """What a run trained on, for the model card."""
    if cfg.get("device") == "cuda":
        return "one GPU"
    threads = cfg.get("threads", 1)
    return "one CPU thread" if threads == 1 else f"{threads} CPU threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.planner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/planner"))
    parser.add_argument("--hidden", type=int, default=192)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=30, help="generator seeds of training pairs")
    parser.add_argument("--first-seed", type=int, default=1000,
                        help="the first of them (another range gives other requests and scenes)")
    parser.add_argument("--multi-turn-scale", type=int, default=1,
                        help="make this many times the multi-turn follow-ups of each seed")
    parser.add_argument("--batch-tokens", type=int, default=6000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=100000, help="at most this many steps")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long")
    parser.add_argument("--deadline", type=float, default=None, metavar="UNIX_SECONDS",
                        help="clock time by which training ends, however long the pairs took to "
                             "encode (a borrowed machine's end); the schedule ends on time")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--decay-steps", type=int, default=3000,
                        help="cosine decay length; with --minutes it also ends on time")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-cases", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (bf16 autocast on cuda)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from a shipped folder's weights and tokenizer (fine-tuning)")
    parser.add_argument("--export", type=Path, default=None, help="write the shipped folder")
    parser.add_argument("--figures", type=Path, default=None,
                        help="with --export: a JSON file of measured figures for the card")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    state_path = args.out / "state.pt"
    if args.export:
        figures = json.loads(args.figures.read_text()) if args.figures else None
        export(state_path, args.export, figures)
        print(f"exported to {args.export}")
        return 0

    from transformers import AutoTokenizer

    pairs = load_pairs(args.out, args.seeds, args.first_seed, args.multi_turn_scale)
    if args.init and not (args.out / "tokenizer").exists():
        # The starting weights only make sense with the tokenizer they were trained with.
        AutoTokenizer.from_pretrained(args.init).save_pretrained(args.out / "tokenizer")
    if (args.out / "tokenizer").exists():
        tokenizer = AutoTokenizer.from_pretrained(args.out / "tokenizer")
    else:
        tokenizer = build_tokenizer([p + "\n" + r for p, r in pairs], args.vocab)
        tokenizer.save_pretrained(args.out / "tokenizer")
    encoded = encode_pairs(tokenizer, pairs)
    from training.data import pick_device, time_limit

    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    state = torch.load(state_path, map_location="cpu", weights_only=False) \
        if state_path.exists() else None
    # A resumed run keeps the shape it was started with; a fine-tune takes its start's.
    start = init_weights(args.init, tokenizer) if args.init and not state else None
    shape = ({"hidden": start.config.hidden_size, "layers": start.config.num_hidden_layers,
              "heads": start.config.num_attention_heads} if start is not None else
             {"hidden": args.hidden, "layers": args.layers, "heads": args.heads})
    cfg = state["config"] if state else {
        **shape, "vocab": len(tokenizer), "batch_tokens": args.batch_tokens, "lr": args.lr,
        "seed": args.seed, "device": device.type, "threads": args.threads,
        "seeds": [args.first_seed, args.first_seed + args.seeds - 1],
        **({"multi_turn_scale": args.multi_turn_scale} if args.multi_turn_scale != 1 else {}),
        **({"init": str(args.init)} if args.init else {})}
    model = make_model(tokenizer, cfg["hidden"], cfg["layers"], cfg["heads"]).to(device)
    if start is not None:
        model.load_state_dict(start.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01,
                                  betas=(0.9, 0.98))
    step, seconds = 0, 0.0
    rng = random.Random(args.seed)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds = state["step"], state.get("seconds", 0.0)
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        print(f"resumed at step {step}", flush=True)
    from world.planning.evaluate import load_cases

    held = [c for c in load_cases(CASES) if c.split == "heldout"]
    held = random.Random(1).sample(held, min(args.eval_cases, len(held)))
    params = sum(p.numel() for p in model.parameters())
    print(f"{len(pairs)} pairs, {sum(len(x) for x, _ in encoded) / len(encoded):.0f} tokens "
          f"each on average, vocabulary {len(tokenizer)}, {params:,} parameters", flush=True)

    def save():
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "step": step, "seconds": seconds, "config": cfg, "pairs": len(pairs),
                    "rng": rng.getstate(), "torch_rng": torch.get_rng_state()},
                   str(state_path) + ".tmp")
        Path(str(state_path) + ".tmp").replace(state_path)  # a kill never leaves half a file

    def lr_at(n: int, elapsed: float = 0.0) -> float:
        if n < args.warmup:
            return args.lr * (n + 1) / args.warmup
        progress = min(1.0, (n - args.warmup) / max(1, args.decay_steps - args.warmup))
        if args.minutes:  # a time budget: the schedule ends when the time does
            progress = max(progress, min(1.0, elapsed / (60 * args.minutes)))
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))

    # The time left to the deadline from here, on top of what a resumed run has spent.
    args.minutes = time_limit(60 * (args.minutes or 0), args.deadline, time.time(), seconds) / 60
    stream = batches(encoded, args.batch_tokens, rng)
    for _ in range(step):  # the same batch order after a resume
        next(stream)
    model.train()
    started, losses = time.perf_counter(), []
    while step < args.steps:
        if args.minutes and seconds + time.perf_counter() - started > 60 * args.minutes:
            break
        ids, labels, mask = (t.to(device) for t in collate(encoded, next(stream), tokenizer.pad_token_id))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, seconds + time.perf_counter() - started)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.append(loss.detach())  # no GPU sync per step
        if step % 20 == 0:
            elapsed = seconds + time.perf_counter() - started
            print(f"step {step} loss {torch.stack(losses).mean().item():.4f} lr {lr_at(step, elapsed):.2e} "
                  f"{elapsed / 60:.1f} min", flush=True)
            losses = []
        if step % args.save_every == 0:
            seconds += time.perf_counter() - started
            started = time.perf_counter()
            save()
        if args.eval_every and step % args.eval_every == 0:
            accuracy, valid = score(model, tokenizer, held)
            print(f"step {step} held-out accuracy {accuracy:.3f} valid {valid:.3f} "
                  f"({len(held)} cases)", flush=True)
    seconds += time.perf_counter() - started
    save()
    print(f"saved step {step} to {state_path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
