#!/usr/bin/python3
"""The PyTorch reference for docs/quality.md: each model trained as aegraph's quality test trains
it (tests/models/mnist_quality.cpp), once per seed, and measured as aegraph's trainer measures it.

Settings: the 60000 MNIST training images, 5 epochs (5 per phase for the stacked model), minibatch
150, a new shuffle every epoch, Adagrad lr 0.01 (Adam lr 1e-3 for the vae), a fresh optimiser per
phase; torch.manual_seed(seed) keys initialisation (PyTorch's default Linear init, which aegraph
copies), noise and shuffling. The models are torch_peer.py's (the throughput peer), plus the
stacked model's second pretraining phase.

The figure, on the 10000 test images after the last epoch: the mean per-pixel BCE of
sigmoid(logits) against the clean image (dae: the uncorrupted input; sae: the whole stack after
fine-tuning); for the vae the test loss in nats per image (BCE summed over pixels + KL, z sampled).

  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist --seeds 0,1,2
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import blas_library, build, read_idx_images  # noqa: E402

MODELS = ["ae", "dae", "cae", "sae", "deep", "vae"]


def load(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return read_idx_images(path)
    raise FileNotFoundError(f"{os.path.join(data_dir, stem)}[.gz]: no such file")


def stacked_block2(torch):
    """Block 2 of the stacked model alone: 128 -> 64 ReLU -> 128, MSE against block 1's codes."""
    nn, F = torch.nn, torch.nn.functional
    e1, d1 = nn.Linear(128, 64), nn.Linear(64, 128)
    return e1, d1, lambda codes: F.mse_loss(d1(F.relu(e1(codes))), codes)


def train_phase(torch, params, loss_fn, train, epochs, batch, lr_kind, gen):
    opt = torch.optim.Adam(params, lr=1e-3) if lr_kind == "adam" else torch.optim.Adagrad(params, lr=0.01)
    n = train.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for at in range(0, n - batch + 1, batch):
            x = train.index_select(0, order[at:at + batch])
            loss = loss_fn(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def run(torch, kind, seed, train, test, epochs, batch):
    F = torch.nn.functional
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    params_of = lambda modules: [q for m in modules for q in m.parameters()]
    if kind == "sae":
        # Phase 1: block 1 (784 -> 128 -> 784); phase 2: block 2 on block 1's codes; then the stack.
        modules, loss1 = build(torch, "sae", "pretrain-1")
        e0, d0 = modules
        train_phase(torch, params_of([e0, d0]), loss1, train, epochs, batch, "adagrad", gen)
        e1, d1, loss2 = stacked_block2(torch)
        train_phase(torch, params_of([e1, d1]), lambda x: loss2(F.relu(e0(x)).detach()), train, epochs, batch,
                    "adagrad", gen)
        stack = lambda x: d0(F.relu(d1(F.relu(e1(F.relu(e0(x)))))))
        train_phase(torch, params_of([e0, e1, d1, d0]), lambda x: F.binary_cross_entropy_with_logits(stack(x), x),
                    train, epochs, batch, "adagrad", gen)
        logits = stack
    else:
        modules, loss_fn = build(torch, kind, "train")
        train_phase(torch, params_of(modules), loss_fn, train, epochs, batch, "adam" if kind == "vae" else "adagrad",
                    gen)
        if kind == "deep":
            logits = modules[0]
        elif kind == "vae":
            fc, mu, logvar, d1, d0 = modules
            logits = lambda x: d0(F.relu(d1(mu(F.relu(fc(x))))))
        else:
            enc, dec = modules
            h = (lambda x: torch.sigmoid(enc(x))) if kind == "cae" else (lambda x: F.relu(enc(x)))
            logits = lambda x: dec(h(x))
    with torch.no_grad():
        if kind == "vae":  # the training objective on the test set: nats per image, z sampled
            return float(loss_fn(test))
        return float(F.binary_cross_entropy(torch.sigmoid(logits(test)), test))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with the MNIST IDX files (gzip or plain)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=150)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="", help="also write the results to FILE (JSON, written atomically)")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            sys.exit(f"torch_quality: unknown model '{m}' (one of {', '.join(MODELS)})")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        sys.exit(f"torch_quality: --seeds {args.seeds}: not a list of integers")
    if args.epochs <= 0 or args.batch <= 0 or args.threads <= 0:
        sys.exit("torch_quality: --epochs, --batch and --threads must be positive")
    try:
        import torch
    except ImportError as e:
        sys.exit(f"torch_quality: {sys.executable}: {e} (Debian: apt-get install python3-torch)")
    try:
        train = torch.from_numpy(load(args.data, "train-images-idx3-ubyte"))
        test = torch.from_numpy(load(args.data, "t10k-images-idx3-ubyte"))
    except (OSError, ValueError) as e:
        sys.exit(f"torch_quality: {e}")
    torch.set_num_threads(args.threads)
    _, core, _ = blas_library()
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"torch {torch.__version__}, {args.threads} threads, OpenBLAS core {core or '?'}, "
          f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or 'unset'} OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE'] or 'unset'}",
          flush=True)
    results = {}
    for kind in models:
        for seed in seeds:
            t0 = time.perf_counter()
            figure = run(torch, kind, seed, train, test, args.epochs, args.batch)
            results.setdefault(kind, {})[str(seed)] = figure
            print(f"{kind:>4} seed {seed}: {figure:.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for kind, by_seed in results.items():
        values = [by_seed[str(s)] for s in seeds]
        print(f"| {kind} | " + " | ".join(f"{v:.4f}" for v in values) + f" | **{sum(values) / len(values):.4f}** |")
    if args.json:
        out = {"torch": torch.__version__, "openblas_core": core, "env": env, "threads": args.threads,
               "epochs": args.epochs, "batch": args.batch, "results": results}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
