#!/usr/bin/env python3
"""The device check's closing table (.ci/gpu-run): one line per (model, backend, batch) from
aebench's JSON rows, ours beside PyTorch eager and torch.compile, and how far the step is from
its GEMM floor (the plan's matmuls timed alone), and what the backend did per timed step
(allocations / stream synchronisations / graph launches: a captured step is 0 / 0 / 1).
The issue's bar at batch 150 on the GPU:
>= 5x eager and >= 1.5x compiled for ae, dae, cae, vae and deep.
Usage: gpu-summary.py aebench.jsonl"""
import json
import sys


def main(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["model"], r["backend"], r["batch"])
        seen = rows.setdefault(key, {"skipped": r.get("skipped", "")})
        if "samples_per_sec" in r and "ours" not in seen:
            seen.update(ours=r["samples_per_sec"], step=r["step_ms_p50"], floor=r.get("floor_ratio"),
                        per_step=r.get("per_step"), memory=r.get("device_bytes_change"))
        if r.get("peer"):
            seen[r["peer"]] = (r.get("peer_samples_per_sec"), r.get("ratio"), r.get("peer_skipped", ""))

    def fmt(v, spec):
        return format(v, spec) if isinstance(v, (int, float)) else "-"

    print(f"\n{'model':<8} {'backend':<7} {'batch':>5} {'ours samp/s':>12} {'step ms':>8} {'/floor':>7}"
          f" {'eager samp/s':>12} {'x eager':>8} {'compiled':>12} {'x comp.':>8} {'alloc/sync/graph':>16}")
    notes = {}  # (peer, why) -> the rows it was skipped in
    captured = []  # (row, whether each timed step was one graph launch, no allocation, no sync)
    for (model, backend, batch), r in rows.items():
        if "ours" not in r:
            print(f"{model:<8} {backend:<7} {batch:>5}  skipped: {r['skipped']}")
            continue
        cells = []
        for peer in ("torch", "torch-compile"):
            sps, ratio, why = r.get(peer, (None, None, ""))
            cells += [fmt(sps, ">12,.0f"), fmt(ratio, ">7.2f") + ("x" if ratio else " ")]
            if why:
                notes.setdefault((peer, why), []).append(f"{model}/{backend}/{batch}")
        per = r.get("per_step") or {}
        counts = "/".join(fmt(per.get(k), ".3g") for k in ("allocations", "stream_syncs", "graph_launches"))
        if backend == "cuda" and per:
            captured.append((f"{model}/{batch}", per.get("allocations") == 0 and per.get("stream_syncs") == 0
                             and per.get("graph_launches") == 1 and r.get("memory") in (0, None)))
        print(f"{model:<8} {backend:<7} {batch:>5} {fmt(r['ours'], '>12,.0f')} {fmt(r['step'], '>8.3f')}"
              f" {fmt(r['floor'], '>6.2f')}x " + " ".join(cells) + f" {counts:>16}")
    for (peer, why), where in notes.items():
        print(f"{peer} skipped in {' '.join(where)}: {why}")
    if captured:
        bad = [row for row, ok in captured if not ok]
        print(f"captured steps: {len(captured) - len(bad)} of {len(captured)} CUDA rows were one graph launch per step"
              f" with no allocation, no stream synchronisation and no change in device memory"
              + (f"; not: {' '.join(bad)}" if bad else ""))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
