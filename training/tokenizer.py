"""Build a small CLIP tokenizer (CLIP's byte-level BPE file format, a world-sized vocabulary).

The full CLIP vocabulary's 49,408-row embedding table would dominate the shipped weights;
the world needs a few hundred words. The files are the ones `CLIPTokenizer` reads
(`vocab.json`, `merges.txt`), so transformers, diffusers and open_clip's HF tokenizer load
them like any hub tokenizer. Words outside the vocabulary still encode, as byte pieces.
"""
from __future__ import annotations

import json
from pathlib import Path

from transformers.convert_slow_tokenizer import bytes_to_unicode

START, END = "<|startoftext|>", "<|endoftext|>"

# Everyday words a request wraps around the world's own vocabulary.
COMMON_WORDS = """
a an the and or of on in at to with by for from into onto over under near next beside between
is are be it its it's them they their this that these those there here one other another each
both all some any only just also too very more less much many few same different new again
left right top bottom middle center centre centered upper lower corner side sides edge up down
above below beneath underneath behind front across around along away toward towards far close
make made turn change changed changing move put place placed set draw paint show create give
add remove delete erase drop get rid keep swap switch replace recolor recolour color colour
colored coloured shape size bigger smaller larger big small large tiny little huge giant
can could would you please i i'd like want need let me us my your we our
undo redo back previous last first second third fourth
two three four five six one pair couple row column line
circle circles ball balls dot dots disc discs disk disks round square squares box boxes block
blocks tile tiles triangle triangles pyramid pyramids object objects thing things item items
red green blue yellow purple violet cyan turquoise teal white black gray grey dark light
background backdrop canvas image picture scene photo logo style like similar reference
instead rather than not no but so then now while when where which what who how
of whole entire half
""".split()


def build_vocab(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level base symbols, then BPE merges learnt on the word list until every word is
    one token (learning, not hand-made prefixes, keeps one word's merges from splitting
    another)."""
    byte_map = bytes_to_unicode()
    vocab: dict[str, int] = {}
    for symbol in list(byte_map.values()) + [c + "</w>" for c in byte_map.values()]:
        vocab.setdefault(symbol, len(vocab))
    pieces = []
    for word in words:
        symbols = [byte_map[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        pieces.append(symbols)
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for symbols in pieces:
            for pair in zip(symbols, symbols[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = max(sorted(counts), key=lambda p: counts[p])
        merges.append(pair)
        vocab.setdefault(pair[0] + pair[1], len(vocab))
        for i, symbols in enumerate(pieces):
            merged, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and (symbols[j], symbols[j + 1]) == pair:
                    merged.append(symbols[j] + symbols[j + 1])
                    j += 2
                else:
                    merged.append(symbols[j])
                    j += 1
            pieces[i] = merged
    vocab[START] = len(vocab)
    # End-of-text gets the largest id: CLIP text towers pool at the argmax token id.
    vocab[END] = len(vocab)
    return vocab, merges


def write_tokenizer(folder: Path, words: list[str], context_length: int) -> int:
    """Write CLIPTokenizer files into `folder`; returns the vocabulary size."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w.lower() for w in words if w.strip()})
    vocab, merges = build_vocab(words)
    # A stale fast-tokenizer file would win over the new vocabulary when loading.
    (folder / "tokenizer.json").unlink(missing_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=context_length, pad_token=END)
    tokenizer.save_pretrained(folder)
    return len(vocab)


def world_words() -> list[str]:
    from world.scene import BACKGROUNDS, COLORS, SHAPES, SIZES
    words = set(COMMON_WORDS) | set(SHAPES) | set(COLORS) | set(SIZES) | set(BACKGROUNDS)
    try:
        from world.phrasings import all_words
        words |= set(all_words())
    except ImportError:
        pass
    # Contractions and punctuation split off as their own pieces.
    return sorted(w for w in words if w.isalpha())
