#!/usr/bin/python3
"""The PyTorch peer of aebench: the same training step as aegraph's, written the way a PyTorch
user would write it, so `aebench --peer torch` can put a number beside ours.

Same architecture, data (the gzip IDX files, read here with gzip + numpy), initialisation
(PyTorch's default Linear / Conv2d / ConvTranspose2d init), optimiser (Adagrad lr 0.01; Adam 1e-3
for the vae and the convolutional models conv, upconv and convdae), batch size and loss as
aegraph's models/ (see docs/benchmarks.md for the list). Each step gathers a minibatch of shuffled
rows from the data set, as aegraph's step does; the convolutional models view each 784-pixel row
as a [1, 28, 28] image.

aebench starts one peer per table row and talks to it over stdin/stdout, one JSON object per
line, so that it can interleave its own repeats with ours:
  peer  -> {"event": "ready", torch version, default threads, BLAS, ...}   (or "error" + reason)
  "run T" -> one repeat at torch.set_num_threads(T): warm-up, then --steps timed steps
  peer  -> {"event": "rep", "threads": T, "samples_per_sec": ..., "step_ms_p50": ..., ...}
  "quit" or end of input -> exits
Run by hand:  echo "run 2" | /usr/bin/python3 bench/peers/torch_peer.py --model ae --data DIR
--compile (aebench --peer torch-compile) times the same step under torch.compile (torch >= 2).
"""
import argparse
import ctypes
import gzip
import json
import os
import struct
import sys
import time

DEFAULT_SIZES = {
    "ae": [784, 128], "dae": [784, 128], "cae": [784, 128], "sparse": [784, 128],
    "sae": [784, 128, 64], "deep": [784, 1000, 500, 250, 30], "vae": [784, 400, 20],
    "wta": [784, 1000], "seq2seq": [784, 256],
    "catvae": [784, 128, 64, 50], "aae": [784, 128, 64, 2],
}
CONV_MODELS = ("conv", "upconv", "convdae")  # [N, 1, 28, 28] images; trained with Adam lr 1e-3
ADAM_MODELS = ("vae", "catvae", "aae", "wta", "seq2seq") + CONV_MODELS


def optimiser(torch, kind, params):
    """The model's default optimiser: Adam lr 1e-3 for the vae, catvae, aae and the convolutional models,
    Adagrad lr 0.01 for the rest (aegraph's tutorial defaults)."""
    if kind in ADAM_MODELS:
        return torch.optim.Adam(params, lr=1e-3)
    return torch.optim.Adagrad(params, lr=0.01)


def compiled(torch, loss_fn, opt_step):
    """The step as torch.compile's documentation suggests compiling training: the loss (its
    forward, and through AOTAutograd its backward) in mode "reduce-overhead", which replays it
    as CUDA graphs on a GPU, and the optimiser's step (opt_step, gradient clamping included)
    compiled on its own in the default mode (its state is made at the first step, and Adam keeps
    its step counts on the host, which CUDA graphs cannot replay)."""
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"torch {torch.__version__} has no torch.compile (it came with torch 2.0)")
    loss_c = torch.compile(loss_fn, mode="reduce-overhead")
    step_c = torch.compile(opt_step)
    # Each step begins a new CUDA-graph generation: the previous step's outputs may be reused.
    mark = getattr(getattr(torch, "compiler", None), "cudagraph_mark_step_begin", None) or (lambda: None)

    def loss(x):
        mark()
        return loss_c(x)
    return loss, step_c


CLAMPED = {"seq2seq": 10.0}  # gradients clamped element-wise to [-c, c] before the optimiser's step


def clamped(torch, params, opt_step, c):
    """opt_step preceded by torch.nn.utils.clip_grad_value_(params, c), as Kaixhin's Seq2SeqAE does."""
    def step():
        torch.nn.utils.clip_grad_value_(params, c)
        opt_step()
    return step


def say(obj):
    print(json.dumps(obj), flush=True)


def read_idx_images(path):
    """An IDX images file (gzip or plain) as float32 [n, rows*cols] in [0, 1]."""
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x00000803:
        raise ValueError(f"{path}: not an IDX images file (magic {magic:#010x})")
    pixels = np.frombuffer(raw, dtype=np.uint8, count=n * rows * cols, offset=16)
    return pixels.reshape(n, rows * cols).astype(np.float32) / np.float32(255.0)


def load_images(args):
    import numpy as np
    if args.data:
        for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
            path = os.path.join(args.data, name)
            if os.path.exists(path):
                return read_idx_images(path), f"MNIST train from {path}"
        raise FileNotFoundError(f"{args.data}: no train-images-idx3-ubyte[.gz]")
    # Synthetic: ~80% background zeros, the rest uniform in (0, 1], like aebench --synthetic.
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.synthetic_rows, 784), dtype=np.float32)
    x[rng.random(x.shape) < 205 / 256] = 0.0
    return x, f"synthetic ({args.synthetic_rows} x 784)"


def build(torch, kind, phase, blocks=()):
    """The model's parameters (as a list of modules) and its loss(x) for one training step.

    sae only: `blocks` are the (encoder, decoder) pairs that earlier phases trained, which this
    phase starts from (bench/peers/torch_quality.py); the blocks it lacks are freshly made.
    conv, upconv, convdae: the modules are [encoder, decoder]; the encoder takes the flat
    [N, 784] rows (viewing them as [N, 1, 28, 28]) and the decoder gives flat [N, 784] logits."""
    nn, F = torch.nn, torch.nn.functional

    def bce(logits, x):  # mean per pixel, aegraph's bce_with_logits
        return F.binary_cross_entropy_with_logits(logits, x)

    if kind in CONV_MODELS:
        conv = lambda a, b, pad=1: nn.Conv2d(a, b, 3, padding=pad)
        up = lambda: nn.Upsample(scale_factor=2, mode="nearest")
        image, flat = nn.Unflatten(1, (1, 28, 28)), nn.Flatten()
        if kind in ("conv", "upconv"):  # Kaixhin's ConvAE encoder: 28 -> 15 -> 8 -> 4, code 8x4x4 = 128
            enc = nn.Sequential(image,
                                conv(1, 16), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),  # 16 x 15 x 15
                                conv(16, 8), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),  # 8 x 8 x 8
                                conv(8, 8), nn.ReLU(), nn.MaxPool2d(2, 2))              # 8 x 4 x 4
        if kind == "conv":  # conv + nearest upsampling: 4 -> 8 -> 16 -> 14 -> 28 -> 28
            dec = nn.Sequential(conv(8, 8), nn.ReLU(), up(),            # 8 x 8 x 8
                                conv(8, 8), nn.ReLU(), up(),            # 8 x 16 x 16
                                conv(8, 16, pad=0), nn.ReLU(), up(),    # 16 x 14 x 14 -> 16 x 28 x 28
                                conv(16, 1), flat)                      # logits, 1 x 28 x 28
            return [enc, dec], lambda x: bce(dec(enc(x)), x)
        if kind == "upconv":  # transposed convolutions: 4 -> 8 -> 16 -> 28
            dec = nn.Sequential(nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1), nn.ReLU(),   # 8 x 8 x 8
                                nn.ConvTranspose2d(8, 16, 4, stride=2, padding=1), nn.ReLU(),  # 16 x 16 x 16
                                nn.ConvTranspose2d(16, 1, 4, stride=2, padding=3), flat)       # logits, 1 x 28 x 28
            return [enc, dec], lambda x: bce(dec(enc(x)), x)
        # convdae: 28 -> 15 -> 7 -> 14 -> 28; trained on x + N(0, 0.5^2) noise (not clipped), target x
        enc = nn.Sequential(image,
                            conv(1, 32), nn.ReLU(), nn.MaxPool2d(2, 2, padding=1),   # 32 x 15 x 15
                            conv(32, 32), nn.ReLU(), nn.MaxPool2d(2, 2))             # 32 x 7 x 7
        dec = nn.Sequential(conv(32, 32), nn.ReLU(), up(),                          # 32 x 14 x 14
                            conv(32, 32), nn.ReLU(), up(),                          # 32 x 28 x 28
                            conv(32, 1), flat)                                      # logits, 1 x 28 x 28
        return [enc, dec], lambda x: bce(dec(enc(x + 0.5 * torch.randn_like(x))), x)

    if kind in ("ae", "dae", "cae", "sparse"):
        enc, dec = nn.Linear(784, 128), nn.Linear(128, 784)
        if kind == "ae":
            return [enc, dec], lambda x: bce(dec(F.relu(enc(x))), x)
        if kind == "dae":  # masking noise: each pixel zeroed with probability 0.3
            return [enc, dec], lambda x: bce(dec(F.relu(enc(x * (torch.rand_like(x) >= 0.3)))), x)
        if kind == "cae":  # sigmoid code, closed-form ||J||_F^2 = sum_j (h_j(1-h_j))^2 sum_i W_ji^2
            def cae_loss(x):
                h = torch.sigmoid(enc(x))
                penalty = ((h * (1 - h)) ** 2 @ (enc.weight ** 2).sum(1)).mean()
                return bce(dec(h), x) + 0.1 * penalty
            return [enc, dec], cae_loss
        rho, beta = 0.05, 3.0  # sparse: sigmoid code, beta * sum_j KL(rho || mean_batch h_j)

        def sparse_loss(x):
            h = torch.sigmoid(enc(x))
            r = h.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = rho * torch.log(rho / r) + (1 - rho) * torch.log((1 - rho) / (1 - r))
            return bce(dec(h), x) + beta * kl.sum()
        return [enc, dec], sparse_loss
    if kind == "sae":
        if phase not in ("pretrain-1", "pretrain-2", "finetune"):
            raise ValueError(f"sae phase '{phase}' has no PyTorch peer (pretrain-1, pretrain-2, finetune)")
        e0, d0 = blocks[0] if len(blocks) > 0 else (nn.Linear(784, 128), nn.Linear(128, 784))
        if phase == "pretrain-1":  # block 1 alone: 784 -> 128 -> 784
            return [e0, d0], lambda x: bce(d0(F.relu(e0(x))), x)
        e1, d1 = blocks[1] if len(blocks) > 1 else (nn.Linear(128, 64), nn.Linear(64, 128))
        if phase == "pretrain-2":  # block 2 on block 1's (frozen) ReLU codes: 128 -> 64 ReLU -> 128, MSE
            def block2_loss(x):
                with torch.no_grad():
                    codes = F.relu(e0(x))
                return F.mse_loss(d1(F.relu(e1(codes))), codes)
            return [e1, d1], block2_loss
        # finetune, the whole stack: 784 -> 128 -> 64 -> 128 -> 784, ReLU throughout
        return [e0, e1, d1, d0], lambda x: bce(d0(F.relu(d1(F.relu(e1(F.relu(e0(x))))))), x)
    if kind == "deep":  # ReLU hidden layers, linear 30-unit code, mirror decoder
        s = DEFAULT_SIZES["deep"]
        layers = []
        for a, b in zip(s, s[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.pop()  # the code layer is linear
        for a, b in zip(s[::-1], s[::-1][1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.pop()  # logits out
        net = nn.Sequential(*layers)
        return [net], lambda x: bce(net(x), x)
    if kind == "vae":  # 784-400-20, summed BCE + KL per image, mean over the batch
        fc, mu, logvar, d1, d0 = (nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20),
                                  nn.Linear(20, 400), nn.Linear(400, 784))

        def vae_loss(x):
            h = F.relu(fc(x))
            m, lv = mu(h), logvar(h)
            z = m + torch.exp(0.5 * lv) * torch.randn_like(m)
            rec = F.binary_cross_entropy_with_logits(d0(F.relu(d1(z))), x, reduction="sum")
            kl = -0.5 * torch.sum(1 + lv - m * m - torch.exp(lv))
            return (rec + kl) / x.shape[0]
        return [fc, mu, logvar, d1, d0], vae_loss
    if kind in ("catvae", "aae"):
        return batch_norm_models(torch, kind)
    if kind in ("wta", "seq2seq"):
        return wta_seq2seq(torch, kind)
    raise ValueError(f"unknown model '{kind}'")


def wta_seq2seq(torch, kind):
    """wta and seq2seq (issue 15), trained with Adam lr 1e-3, BCE per pixel.

    wta: 784-1000 ReLU; in training each unit keeps its ceil(0.05 B) largest activations over the
    batch, the rest zeroed; decoder 1000-784. loss.test(x): the logits with every activation.
    seq2seq: each image is 28 rows of 28 pixels; encoder nn.LSTM(28, 256, 2 layers); decoder
    nn.LSTM(28, 256, 2 layers) from the encoder's final (h, c), reading the image shifted down
    one row (zeros first); Linear 256 -> 28 per row. Gradients clamped to [-10, 10] (CLAMPED).
    loss.test(x): teacher-forced logits; loss.free(x): the decoder fed its own sigmoid rows from zeros."""
    import math
    nn, F = torch.nn, torch.nn.functional
    if kind == "wta":
        enc, dec = nn.Linear(784, 1000), nn.Linear(1000, 784)

        def wta_loss(x):
            h = F.relu(enc(x))
            winners = h.topk(math.ceil(0.05 * x.shape[0]), dim=0).indices
            mask = torch.zeros_like(h).scatter_(0, winners, 1.0)
            return F.binary_cross_entropy_with_logits(dec(h * mask), x)
        wta_loss.test = lambda x: dec(F.relu(enc(x)))
        return [enc, dec], wta_loss
    enc = nn.LSTM(28, 256, num_layers=2, batch_first=True)
    dec = nn.LSTM(28, 256, num_layers=2, batch_first=True)
    out = nn.Linear(256, 28)

    def teacher_forced(x):
        rows = x.view(-1, 28, 28)
        _, state = enc(rows)
        shifted = torch.cat([torch.zeros_like(rows[:, :1]), rows[:, :-1]], 1)
        h, _ = dec(shifted, state)
        return out(h).reshape(-1, 784)

    def free_running(x):
        _, state = enc(x.view(-1, 28, 28))
        row, logits = torch.zeros_like(x[:, :28]), []
        for _ in range(28):
            h, state = dec(row.unsqueeze(1), state)
            logits.append(out(h[:, 0]))
            row = torch.sigmoid(logits[-1])
        return torch.cat(logits, 1)

    def seq_loss(x):
        return F.binary_cross_entropy_with_logits(teacher_forced(x), x)
    seq_loss.test, seq_loss.free = teacher_forced, free_running
    return [enc, dec, out], seq_loss


def bn_mlp(nn, sizes):
    """Linear, BatchNorm1d, ReLU for each hidden size, then a Linear (aegraph's BatchNormMlp)."""
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers[:-2])


def batch_norm_models(torch, kind):
    """catvae and aae (issue 15), batch-normalised ReLU layers both ways.

    catvae: 784-128-64-50 logits, 5 groups of 10 categories; y = softmax((logits + g) / tau) per
    group, g = -log(-log(u + 1e-9) + 1e-9), tau = max(1 - 0.0002 t, 0.5) at step t (from 0);
    decoder 50-64-128-784; loss per image = BCE summed over pixels + KL(softmax(logits) || uniform)
    summed over groups, mean over the batch. loss.test(x): the same with y = softmax(logits / 0.5),
    no noise (the caller puts the modules in eval mode).
    aae: 784-128-64-2 code z, decoder 2-64-128-784, adversary 2-16-1 with its own Adam (lr 1e-3),
    which the loss steps first: BCE-with-logits(D(z_prior), 1) + BCE-with-logits(D(z.detach()), 0),
    z_prior ~ N(0, I); then it returns the autoencoder's loss, per-pixel BCE + BCE-with-logits(D(z), 1)
    against the updated adversary, for the caller's optimiser over the encoder and decoder."""
    import math
    nn, F = torch.nn, torch.nn.functional
    s = DEFAULT_SIZES[kind]
    enc, dec = bn_mlp(nn, s), bn_mlp(nn, s[::-1])
    if kind == "catvae":
        steps = [0]

        def objective(x, y_of):
            logits = enc(x)
            groups = logits.view(-1, s[-1] // 10, 10)
            rec = F.binary_cross_entropy_with_logits(dec(y_of(groups).view(-1, s[-1])), x, reduction="sum")
            log_q = F.log_softmax(groups, -1)
            kl = (log_q.exp() * (log_q + math.log(10))).sum()
            return (rec + kl) / x.shape[0]

        def catvae_loss(x):
            tau = max(1.0 - 0.0002 * steps[0], 0.5)
            steps[0] += 1

            def sample(groups):
                u = torch.rand_like(groups)
                return F.softmax((groups - torch.log(-torch.log(u + 1e-9) + 1e-9)) / tau, -1)
            return objective(x, sample)
        catvae_loss.test = lambda x: objective(x, lambda groups: F.softmax(groups / 0.5, -1))
        return [enc, dec], catvae_loss
    adversary, state = bn_mlp(nn, [s[-1], 16, 1]), {}

    def says_prior(code, target):
        verdict = adversary(code)
        return F.binary_cross_entropy_with_logits(verdict, torch.full_like(verdict, target))

    def aae_loss(x):
        if not state:  # made where the batch is: the caller moves only the returned modules
            state["opt"] = torch.optim.Adam(adversary.to(x.device).parameters(), lr=1e-3)
        z = enc(x)
        d_loss = says_prior(torch.randn_like(z), 1.0) + says_prior(z.detach(), 0.0)
        state["opt"].zero_grad(set_to_none=True)
        d_loss.backward()
        state["opt"].step()
        return F.binary_cross_entropy_with_logits(dec(z), x) + says_prior(z, 1.0)
    return [enc, dec], aae_loss


def keep_heap():
    """Keeps freed memory in glibc's heap instead of handing it back to the kernel.

    A CPU training step in eager PyTorch allocates its activations and gradients afresh, several
    of them megabytes. With glibc's default, adaptive thresholds, whether such a block comes from
    the heap or from a fresh mmap (zero-filled pages, one fault per 4 KiB, returned at free)
    changes from run to run: on this machine the same convdae step measured 50 ms in some
    processes and 140-210 ms in others. Fixed thresholds (largest mmap threshold glibc takes,
    trimming only above 1 GiB) make every process the fast one, as jemalloc or tcmalloc would.
    aegraph's arena never frees during training, so this only brings PyTorch to its best.
    Returns what was set, for the "ready" line."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "not glibc: left alone"
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    if libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 or libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) != 1:
        return "mallopt refused: glibc defaults"
    return "mallopt: mmap threshold 32 MiB, trim threshold 1 GiB"


def blas_library():
    """The BLAS shared library torch loaded, the OpenBLAS core it chose, and a function giving
    OpenBLAS's thread count: torch.set_num_threads does not set it, so with the pthread build
    of OpenBLAS torch's matrix products use every core whatever torch's own setting."""
    path = ""
    with open("/proc/self/maps") as maps:
        for line in maps:
            name = line.split()[-1] if len(line.split()) >= 6 else ""
            if "blas" in os.path.basename(name):
                path = name
                if "openblas" in os.path.basename(name):
                    break
    core, threads = "", (lambda: 0)
    if path:
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            core = lib.openblas_get_corename().decode()
            threads = lib.openblas_get_num_threads
        except (OSError, AttributeError):
            pass
    return path, core, threads


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--phase", default="", help="sae: pretrain-1 (default), pretrain-2 or finetune")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=150)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--data", default="", help="folder with train-images-idx3-ubyte[.gz]")
    p.add_argument("--synthetic-rows", type=int, default=60000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true",
                   help='torch.compile the loss (mode="reduce-overhead") and the optimiser step')
    p.add_argument("--glibc-malloc-defaults", action="store_true",
                   help="leave glibc's adaptive malloc thresholds as they are (see keep_heap)")
    args = p.parse_args()
    heap = "glibc defaults" if args.glibc_malloc_defaults else keep_heap()
    try:
        import numpy as np
        import torch
    except ImportError as e:
        say({"event": "error", "reason": f"{sys.executable}: {e}"})
        return 0
    default_threads = torch.get_num_threads()  # before anything sets it
    try:
        if args.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"torch {torch.__version__} has no CUDA device (built with CUDA: "
                               f"{torch.backends.cuda.is_built()})")
        if args.batch <= 0 or args.steps <= 0 or args.warmup < 0:
            raise ValueError("--batch and --steps must be positive, --warmup >= 0")
        device = torch.device(args.device)
        torch.manual_seed(args.seed)
        phase = args.phase or ("pretrain-1" if args.model == "sae" else "train")
        modules, loss_fn = build(torch, args.model, phase)
        params = [q for m in modules for q in m.to(device).parameters()]
        opt = optimiser(torch, args.model, params)
        if args.model in CLAMPED:  # the clamp before every step (compiled or not)
            opt.step = clamped(torch, params, opt.step, CLAMPED[args.model])
        opt_step = opt.step
        if args.compile:
            loss_fn, opt_step = compiled(torch, loss_fn, opt_step)
        images, description = load_images(args)
        if args.batch > images.shape[0]:
            raise ValueError(f"batch {args.batch} is larger than the {images.shape[0]} examples")
        data = torch.from_numpy(images)
        if device.type == "cuda":
            data = data.pin_memory()
    except Exception as e:  # anything that stops the peer before it runs is reported, not raised
        say({"event": "error", "reason": f"{type(e).__name__}: {e}"})
        return 0

    blas, core, blas_threads = blas_library()
    say({"event": "ready", "torch": torch.__version__, "numpy": np.__version__,
         "device": str(device), "compile": "reduce-overhead" if args.compile else "eager",
         "default_threads": default_threads, "blas": blas,
         "blas_threads": blas_threads(),
         "openblas_core": core, "phase": phase, "parameters": sum(q.numel() for q in params),
         "data": description, "malloc": heap,
         "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                 "OMP_NUM_THREADS")}})

    n = data.shape[0]
    gen = torch.Generator().manual_seed(args.seed)
    order, at = torch.randperm(n, generator=gen), 0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        nonlocal order, at
        if at + args.batch > n:  # a new epoch: a new permutation
            order, at = torch.randperm(n, generator=gen), 0
        x = data.index_select(0, order[at:at + args.batch]).to(device, non_blocking=True)
        at += args.batch
        loss = loss_fn(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt_step()
        return loss

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] != "run" or len(words) != 2:
            say({"event": "error", "reason": f"unknown command {line.strip()!r} (run THREADS, quit)"})
            continue
        threads = int(words[1])
        torch.set_num_threads(threads)
        try:  # a step that fails (a compiler error, say) ends the peer with its reason
            for _ in range(args.warmup):
                step()
            sync()
            times = []
            start = time.perf_counter()
            for _ in range(args.steps):
                t0 = time.perf_counter()
                loss = step()
                sync()
                times.append(time.perf_counter() - t0)
            total = time.perf_counter() - start
        except Exception as e:
            say({"event": "error", "reason": f"step failed: {type(e).__name__}: {str(e)[:500]}"})
            return 0
        times.sort()
        pick = lambda q: 1e3 * float(np.percentile(times, q))
        say({"event": "rep", "threads": torch.get_num_threads(), "blas_threads": blas_threads(),
             "samples_per_sec": args.steps * args.batch / total,
             "step_ms_p50": pick(50), "step_ms_p90": pick(90), "loss": float(loss)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
