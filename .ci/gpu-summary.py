#!/usr/bin/env python3
"""The device check's closing table (.ci/gpu-run): one line per (model, backend, batch) from
aebench's JSON rows, ours beside PyTorch eager and torch.compile, and how far the step is from
its GEMM floor (the plan's matmuls timed alone). The issue's bar at batch 150 on the GPU:
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
            seen.update(ours=r["samples_per_sec"], step=r["step_ms_p50"], floor=r.get("floor_ratio"))
        if r.get("peer"):
            seen[r["peer"]] = (r.get("peer_samples_per_sec"), r.get("ratio"), r.get("peer_skipped", ""))

    def fmt(v, spec):
        return format(v, spec) if isinstance(v, (int, float)) else "-"

    print(f"\n{'model':<8} {'backend':<7} {'batch':>5} {'ours samp/s':>12} {'step ms':>8} {'/floor':>7}"
          f" {'eager samp/s':>12} {'x eager':>8} {'compiled':>12} {'x comp.':>8}")
    notes = {}  # (peer, why) -> the rows it was skipped in
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
        print(f"{model:<8} {backend:<7} {batch:>5} {fmt(r['ours'], '>12,.0f')} {fmt(r['step'], '>8.3f')}"
              f" {fmt(r['floor'], '>6.2f')}x " + " ".join(cells))
    for (peer, why), where in notes.items():
        print(f"{peer} skipped in {' '.join(where)}: {why}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
