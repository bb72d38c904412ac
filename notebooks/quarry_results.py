"""quarry_results - loading quarry's result files for the notebooks.

The notebooks (kernels, model, load) read JSON result documents (schema
"quarry-results/1") from a results folder:
  bench-*.json        `quarry bench all` / `make bench`: a flat "results" list
                      of figures (group, name, unit, mean, stddev, n, samples,
                      fraction_of_membw, labels) - see harness/figures.h
  llama-bench-*.json  llama.cpp's llama-bench output imported with
                      `quarry bench import ... -o` (the same figure format)
  load-*.json         quarry-load runs (loadgen/report.h): results[0] holds the
                      summary with latency histograms
Environment:
  QUARRY_RESULTS        the folder (default ../results, seen from notebooks/)
  QUARRY_REPORT_OUT     where PNGs go (default ../results/report)
  QUARRY_REQUIRE_DATA   "1": a notebook with no input files fails instead of
                        saying so (CI runs the notebooks on results/samples)
"""

import glob
import json
import os

import numpy as np


def results_dir():
    return os.environ.get("QUARRY_RESULTS", os.path.join("..", "results"))


def report_dir():
    out = os.environ.get("QUARRY_REPORT_OUT", os.path.join("..", "results", "report"))
    os.makedirs(out, exist_ok=True)
    return out


def require_data():
    return os.environ.get("QUARRY_REQUIRE_DATA", "0") == "1"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def find(pattern):
    """Result documents matching pattern in the results folder, oldest first
    (by their created_utc, then by name)."""
    docs = []
    for path in glob.glob(os.path.join(results_dir(), pattern)):
        try:
            doc = load(path)
        except (OSError, json.JSONDecodeError) as e:
            raise RuntimeError(f"{path}: not a readable result file: {e}") from e
        if doc.get("schema") != "quarry-results/1":
            raise RuntimeError(f"{path}: schema {doc.get('schema')!r}, expected quarry-results/1")
        doc["_path"] = path
        docs.append(doc)
    docs.sort(key=lambda d: (d.get("created_utc") or "", d["_path"]))
    return docs


def no_data(what):
    """Says there is nothing to plot; fails when data is required."""
    msg = f"no {what} in {results_dir()}"
    if require_data():
        raise RuntimeError(msg)
    print(msg + ": nothing to plot")


def figures(doc, group=None):
    """The document's figures (optionally of one group)."""
    rows = doc.get("results") or []
    return [f for f in rows if isinstance(f, dict) and "group" in f and "mean" in f
            and (group is None or f["group"] == group)]


def label(doc):
    """A short description of a result document for legends and titles."""
    build = doc.get("build") or {}
    sha = build.get("git_sha") or "?"
    dirty = "+" if build.get("git_dirty") else ""
    return f"{doc.get('created_utc', '?')[:16]} {sha[:8]}{dirty}"


def test_order(test):
    """Sort key for llama-bench test names: pp before tg, then by size
    ("pp64" < "pp512" < "tg16" < "tg128")."""
    head = test.split(" ")[0].split("+")[0]
    digits = "".join(ch for ch in head[2:] if ch.isdigit())
    return (not head.startswith("pp"), int(digits) if digits else 0, test)


def machine_line(doc):
    m = doc.get("machine") or {}
    b = doc.get("build") or {}
    mem = m.get("mem_total_bytes")
    mem_s = f"{mem / 2**30:.1f} GiB" if mem else "? GiB"
    return (f"{m.get('cpu_model') or '?'}, {m.get('cores') or '?'} cores, {mem_s}; "
            f"{b.get('compiler', '?')}, ISA {b.get('isa_chosen', '?')}")


def hist_from_buckets(h):
    """A load-report histogram ({"buckets": [[lower_ns, count], ...]}) as
    (values in ms, counts) arrays, for plotting its distribution."""
    buckets = h.get("buckets") or []
    if not buckets:
        return np.array([]), np.array([])
    lower = np.array([b[0] for b in buckets], dtype=float) / 1e6
    count = np.array([b[1] for b in buckets], dtype=float)
    return lower, count


def savefig(fig, name):
    path = os.path.join(report_dir(), name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print("saved", path)
