#!/usr/bin/python3
"""The PyTorch reference for docs/quality.md: each model trained as aegraph's quality test trains
it (tests/models/mnist_quality.cpp), once per seed, and measured as aegraph's trainer measures it.

Settings (models/trainer.h's TrainConfig defaults): the 60000 MNIST training images, 5 epochs (5 per
phase for the stacked model), minibatch 150 (60000 = 400 x 150, so no partial batch), a new
shuffle every epoch, Adagrad lr 0.01 (Adam lr 1e-3 for the vae and for the convolutional models
conv, upconv and convdae), a fresh optimiser per phase.
torch.manual_seed(seed) keys initialisation (PyTorch's default Linear / Conv2d / ConvTranspose2d
init) and noise; a torch.Generator seeded with the same seed shuffles (as torch_peer.py does).
The models are torch_peer.py's build(): the stacked model runs its three phases, pretrain-1
(block 1, 784 -> 128 -> 784, BCE), pretrain-2 (block 2 on block 1's ReLU codes, 128 -> 64 ->
128, MSE) and finetune (the whole stack on the pixels, from both pretrained blocks). The
convolutional models take each image as [1, 28, 28]: conv (Kaixhin's ConvAE, code 8x4x4, decoder
convolutions + nearest upsampling), upconv (the same encoder, a transposed-convolution decoder)
and convdae (32-channel, code 32x7x7, trained on the image plus unclipped Gaussian noise of std
0.5 against the clean image). --models defaults to the six dense models only
(ae,dae,cae,sae,deep,vae); name conv,upconv,convdae to train the convolutional ones (much slower
on a CPU).

The figure, on the 10000 test images after the last epoch, evaluated in batches of 1000 as
aegraph's Trainer::evaluate does: the mean per-pixel BCE of sigmoid(logits) against the clean
image (dae, convdae: the uncorrupted input; sae: the whole stack after fine-tuning); for the vae the test
loss in nats per image (BCE summed over pixels + KL, z = mu + sigma * eps sampled, as in PyTorch's
VAE example and aegraph's VariationalAutoencoder::loss); for the catvae its test loss in nats per
image (batch norm in eval mode, y = softmax(logits / 0.5)); for the aae the test BCE and the shares
of test codes inside radius 1 and 2 (rows "aae r<1", "aae r<2").

  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist \\
      --models ae,dae,cae,sae,deep,vae --seeds 0,1,2 [--epochs 5] [--threads 2] [--json OUT]
  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist \\
      --models conv,upconv,convdae --seeds 0,1,2
  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist --models catvae,aae --seeds 0,1,2 --threads 1
  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist --models wta --seeds 0,1,2
  /usr/bin/python3 bench/peers/torch_quality.py --data ../shared/data/mnist --models seq2seq --epochs 1
(wta: test BCE with every activation; seq2seq: rows "seq2seq" teacher-forced, "seq2seq free"
free-running, gradients clamped to [-10, 10] before Adam.)
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_peer import ADAM_MODELS, CLAMPED, CONV_MODELS, blas_library, build, clamped, read_idx_images  # noqa: E402

MODELS = ["ae", "dae", "cae", "sae", "deep", "vae"]  # the default --models
ALL_MODELS = MODELS + list(CONV_MODELS) + ["catvae", "aae", "wta", "seq2seq"]  # those --models accepts
EVAL_BATCH = 1000  # aegraph's TrainConfig::eval_batch_size


def load(data_dir, stem):
    """One IDX images file of the data folder, gzip or plain; a clear error naming what is missing."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such folder (the MNIST IDX files' folder)")
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return read_idx_images(path)
    raise FileNotFoundError(f"{os.path.join(data_dir, stem + '.gz')}: no such file (nor {stem})")


def train_phase(torch, modules, loss_fn, train, epochs, batch, optimiser, gen, log, clamp=0.0):
    """`epochs` epochs of shuffled minibatches with a fresh optimiser; the mean loss of each epoch to
    log. clamp > 0: gradients clamped element-wise to [-clamp, clamp] before each step."""
    params = [q for m in modules for q in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3) if optimiser == "adam" else torch.optim.Adagrad(params, lr=0.01)
    opt_step = clamped(torch, params, opt.step, clamp) if clamp > 0 else opt.step
    n = train.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for at in range(0, n, batch):  # the last partial batch (if any) is trained too, as aegraph does
            x = train.index_select(0, order[at:at + batch])
            loss = loss_fn(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt_step()
            total += float(loss) * x.shape[0]
            seen += x.shape[0]
        log(epoch, total / seen)


def evaluate(torch, logits, test, vae_loss=None):
    """Test BCE (mean per pixel of sigmoid(logits) vs the clean image, log clamped at -100 as in
    both frameworks) or, with vae_loss, the objective in nats per image; in batches of 1000."""
    F = torch.nn.functional
    total = 0.0
    with torch.no_grad():
        for at in range(0, test.shape[0], EVAL_BATCH):
            x = test[at:at + EVAL_BATCH]
            figure = vae_loss(x) if vae_loss else F.binary_cross_entropy(torch.sigmoid(logits(x)), x)
            total += float(figure) * x.shape[0]
    return total / test.shape[0]


def run(torch, kind, seed, train, test, epochs, batch, verbose):
    F = torch.nn.functional
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)

    def logger(phase):
        def log(epoch, loss):
            if verbose:
                print(f"  {kind:>7} seed {seed} {phase:<11} epoch {epoch + 1}  train {loss:.4f}", flush=True)
        return log

    if kind == "sae":
        blocks = []
        for phase in ("pretrain-1", "pretrain-2", "finetune"):
            modules, loss_fn = build(torch, "sae", phase, blocks)
            train_phase(torch, modules, loss_fn, train, epochs, batch, "adagrad", gen, logger(phase))
            if phase != "finetune":
                blocks.append(tuple(modules))  # (encoder, decoder)
            if verbose and phase == "pretrain-2":
                (e0, d0), (e1, d1) = blocks
                stack = lambda x: d0(F.relu(d1(F.relu(e1(F.relu(e0(x)))))))
                print(f"  {kind:>4} seed {seed} pretrained stack (before fine-tuning): test BCE "
                      f"{evaluate(torch, stack, test):.4f}", flush=True)
        (e0, d0), (e1, d1) = blocks  # fine-tuned in place
        return evaluate(torch, lambda x: d0(F.relu(d1(F.relu(e1(F.relu(e0(x))))))), test)

    if kind in ("catvae", "aae"):
        return batch_norm_run(torch, kind, train, test, epochs, batch, gen, logger("train"))
    modules, loss_fn = build(torch, kind, "train")
    train_phase(torch, modules, loss_fn, train, epochs, batch, "adam" if kind in ADAM_MODELS else "adagrad",
                gen, logger("train"), CLAMPED.get(kind, 0.0))
    if kind == "wta":  # evaluation passes every activation
        return evaluate(torch, loss_fn.test, test)
    if kind == "seq2seq":  # teacher-forced and free-running (rows "seq2seq", "seq2seq free")
        return {"seq2seq": evaluate(torch, loss_fn.test, test), "seq2seq free": evaluate(torch, loss_fn.free, test)}
    if kind == "vae":  # the training objective on the test set: nats per image, z sampled
        if verbose:
            fc, mu, _, d1, d0 = modules  # the mean's reconstruction, as aegraph's bce column
            print(f"  {kind:>4} seed {seed} test BCE of the mean's reconstruction "
                  f"{evaluate(torch, lambda x: d0(F.relu(d1(mu(F.relu(fc(x)))))), test):.4f}", flush=True)
        return evaluate(torch, None, test, vae_loss=loss_fn)
    if kind == "deep":
        return evaluate(torch, modules[0], test)
    if kind in CONV_MODELS:  # flat rows in, flat logits out; convdae evaluated on clean images
        enc, dec = modules
        return evaluate(torch, lambda x: dec(enc(x)), test)
    enc, dec = modules  # ae, dae (clean input at evaluation), cae (sigmoid code)
    code = torch.sigmoid if kind == "cae" else F.relu
    return evaluate(torch, lambda x: dec(code(enc(x))), test)


def batch_norm_run(torch, kind, train, test, epochs, batch, gen, log):
    """catvae: the test loss in nats per image (y = softmax(logits / 0.5), no noise, batch norm
    on its running statistics). aae: the test BCE (as every model's), and how the 10000 test
    codes fit the prior N(0, I): the share inside radius 1 and 2 (0.393 and 0.865 for the prior)."""
    modules, loss_fn = build(torch, kind, "train")
    train_phase(torch, modules, loss_fn, train, epochs, batch, "adam", gen, log)
    for m in modules:
        m.eval()
    if kind == "catvae":
        return evaluate(torch, None, test, vae_loss=loss_fn.test)
    enc, dec = modules
    with torch.no_grad():
        radius = torch.cat([enc(test[at:at + EVAL_BATCH]) for at in range(0, test.shape[0], EVAL_BATCH)]).norm(dim=1)
    return {"aae": evaluate(torch, lambda x: dec(enc(x)), test),
            "aae r<1": float((radius < 1).double().mean()), "aae r<2": float((radius < 2).double().mean())}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with the MNIST IDX files (gzip or plain)")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated, of " + ",".join(ALL_MODELS) + " (default: the six dense ones)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=5, help="per phase")
    p.add_argument("--batch", type=int, default=150)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--json", default="", help="also write the results to FILE (JSON, written atomically)")
    p.add_argument("--verbose", action="store_true", help="each epoch's training loss, sae's pretrained stack")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in ALL_MODELS:
            sys.exit(f"torch_quality: unknown model '{m}' (one of {', '.join(ALL_MODELS)})")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        sys.exit(f"torch_quality: --seeds {args.seeds}: not a list of integers")
    if not models or not seeds:
        sys.exit("torch_quality: --models and --seeds must name at least one each")
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
    if train.shape[1] != 784 or test.shape[1] != 784:
        sys.exit(f"torch_quality: the images are {train.shape[1]} / {test.shape[1]} pixels, the models take 784")
    torch.set_num_threads(args.threads)
    _, core, blas_threads = blas_library()
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    header = (f"torch {torch.__version__}, {torch.get_num_threads()} threads (OpenBLAS {blas_threads()}), "
              f"OpenBLAS core {core or '?'}, OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or 'unset'} "
              f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE'] or 'unset'}; {train.shape[0]} training and "
              f"{test.shape[0]} test images, {args.epochs} epochs{' per phase' if 'sae' in models else ''}, "
              f"batch {args.batch}")
    print(header, flush=True)
    results, seconds = {}, {}
    for kind in models:
        for seed in seeds:
            t0 = time.perf_counter()
            figures = run(torch, kind, seed, train, test, args.epochs, args.batch, args.verbose)
            took = time.perf_counter() - t0
            if not isinstance(figures, dict):  # the aae gives three: its test BCE and two code shares
                figures = {kind: figures}
            for name, figure in figures.items():
                results.setdefault(name, {})[str(seed)] = figure
                unit = "nats/image test loss" if name in ("vae", "catvae") else "share" if " r<" in name else "test BCE"
                print(f"{name:>7} seed {seed}: {figure:.4f}  ({unit}, {took:.0f} s)", flush=True)
            seconds.setdefault(kind, {})[str(seed)] = round(took, 1)
    print("\n| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for kind, by_seed in results.items():
        values = [by_seed[str(s)] for s in seeds]
        print(f"| {kind} | " + " | ".join(f"{v:.4f}" for v in values) + f" | **{sum(values) / len(values):.4f}** |")
    print(f"\ntorch {torch.__version__}, OpenBLAS core {core or '?'}, "
          f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE'] or 'unset'}, "
          f"OPENBLAS_L2_SIZE={env['OPENBLAS_L2_SIZE'] or 'unset'}, {args.threads} threads")
    if args.json:
        out = {"torch": torch.__version__, "openblas_core": core, "env": env, "threads": args.threads,
               "epochs": args.epochs, "batch": args.batch, "seeds": seeds,
               "metric": {"vae": "test loss, nats per image", "catvae": "test loss, nats per image",
                          "aae r<1": "share of test codes inside radius 1", "aae r<2": "share inside radius 2"},
               "default_metric": "test BCE, mean per pixel",
               "results": results,
               "means": {k: sum(v.values()) / len(v) for k, v in results.items()}, "seconds": seconds}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
