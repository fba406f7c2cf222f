"""How docs/benchmarks.md ("Search: segmentation (issue 16)") measured
tidings.search.text.index_tokens: messages per CPU-second on one core, over the chat
lines of tests/search/relevance.json as they are (short) and joined 2-4 at a time
(long). Not part of the test suite; run from the repository root, pinned to one core:

    taskset -c 1 env PYTHONPATH=src .venv/bin/python scripts/bench_search_text.py [VARIANT]
    VARIANT: (none) as shipped | not2s  without OpenCC | t2sall  OpenCC on the whole text
             | jieba  pure-Python jieba instead of rjieba (pip install --target DIR
               jieba; JIEBA_PATH=DIR)
"""

import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from tidings.search import text  # noqa: E402

data = json.loads((ROOT / "tests/search/relevance.json").read_text(encoding="utf-8"))
corpus = [m["text"] for m in data["corpus"]]
rnd = random.Random(16)
short = corpus * 100
long_ = [" ".join(rnd.sample(corpus, rnd.randint(2, 4))) for _ in range(20_000)]


def run(label: str, msgs: list[str]) -> None:
    best_cpu = best_wall = 0.0
    n = 0
    for _ in range(3):
        cpu, wall, n = time.process_time(), time.perf_counter(), 0
        for m in msgs:
            n += len(text.index_tokens(m))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        best_cpu, best_wall = max(best_cpu, len(msgs) / cpu), max(best_wall, len(msgs) / wall)
    print(
        f"{label}: {best_cpu:,.0f} msg per CPU-second ({best_wall:,.0f} msg/s wall), "
        f"{len(msgs):,} msgs, {sum(map(len, msgs)) / len(msgs):.0f} chars and "
        f"{n / len(msgs):.1f} tokens per msg"
    )


variant = sys.argv[1] if len(sys.argv) > 1 else "rjieba"
if variant == "jieba":
    sys.path.insert(0, os.environ["JIEBA_PATH"])
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    class Jieba:
        cut_for_search = staticmethod(lambda s: list(jieba.cut_for_search(s)))
        cut_all = staticmethod(lambda s: list(jieba.cut(s, cut_all=True)))

    text.rjieba = Jieba  # type: ignore[assignment]
elif variant == "not2s":

    class NoT2S:
        convert = staticmethod(lambda s: s)

    text._t2s = NoT2S  # type: ignore[assignment]
elif variant == "t2sall":
    t2s, fold = text._t2s, text._fold
    text._fold = lambda t: fold(t2s.convert(t))  # type: ignore[assignment]
run(f"{variant} short", short)
run(f"{variant} long", long_)
