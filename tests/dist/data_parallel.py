"""ae-train under mpirun (docs/scale-out.md), checked against one process on a generated IDX set.

  data_parallel.py AE_TRAIN MPIRUN WORK_DIR same MODEL [SIZES]
      2 ranks train MODEL as 1 process does: every epoch's training and test loss within 1e-5
      (relative), and every parameter as close as the numerical contract (docs/architecture.md)
      asks of another thread count: within 1e-5 of the largest parameter, or as close as 1
      process on 2 threads is to 1 process on 1 (Adagrad's first steps, g / sqrt(g^2), turn a
      rounding in a gradient near 0 into a step of lr). Only rank 0 prints its summary.
  data_parallel.py AE_TRAIN MPIRUN WORK_DIR resume
      2 epochs on 2 ranks, then --resume on 1 process to 4 epochs = 4 epochs on 1 process.
  data_parallel.py AE_TRAIN MPIRUN WORK_DIR killed
      rank 1 killed (SIGKILL) during training: mpirun ends the job within seconds with an error
      that names the rank, and the checkpoint left in --out is a whole one.
  data_parallel.py AE_TRAIN MPIRUN WORK_DIR cuda
      2 ranks on 2 GPUs (NCCL) as 1 process on 1 GPU (losses within 1e-4); exits 77 (skipped)
      with fewer than 2 GPUs.

The training set has 601 images and the batch is 100: the last batch of each epoch is one row,
which leaves rank 0 without a row (it joins the step's sum with a zero share).
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "library"))
import make_idx  # noqa: E402

TRAIN_N, TEST_N, BATCH = 601, 200, 100


def fail(message):
    print(f"data_parallel.py: {message}", file=sys.stderr)
    sys.exit(1)


def mpirun_prefix(mpirun, ranks):
    prefix = [mpirun, "-np", str(ranks), "--oversubscribe"]
    if os.geteuid() == 0:
        prefix.append("--allow-run-as-root")
    # One host: shared memory between the processes, no network interfaces probed. (Local ranks
    # inherit mpirun's environment, ASAN_OPTIONS too.)
    return prefix + ["--mca", "btl", "self,vader"]


def run(command, timeout=120):
    r = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        fail(f"{' '.join(command)} exited with {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    header.pop("__metadata__", None)
    data = raw[8 + header_len :]
    dtypes = {"F32": np.float32, "F64": np.float64}
    return {
        name: np.frombuffer(data[t["data_offsets"][0] : t["data_offsets"][1]], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        for name, t in header.items()
    }


def is_parameter(name):  # the checkpoint's names: PyTorch's for parameters, then optim.* and trainer.*
    return not name.startswith(("optim.", "trainer."))


def largest_and_worst(a_dir, b_dir):
    pa = read_safetensors(os.path.join(a_dir, "checkpoint.safetensors"))
    pb = read_safetensors(os.path.join(b_dir, "checkpoint.safetensors"))
    if sorted(pa) != sorted(pb):
        fail(f"{a_dir} and {b_dir}: the checkpoints hold different tensors")
    params = [n for n in pa if is_parameter(n)]
    largest = max(float(np.abs(pa[n]).max()) for n in params)
    return largest, max(float(np.abs(pa[n].astype(np.float64) - pb[n]).max()) for n in params)


def compare(a_dir, b_dir, what, rel=1e-5, threads_dir=None):
    a = json.load(open(os.path.join(a_dir, "metrics.json")))
    b = json.load(open(os.path.join(b_dir, "metrics.json")))
    if len(a["epochs"]) != len(b["epochs"]):
        fail(f"{what}: {len(a['epochs'])} epochs against {len(b['epochs'])}")
    for k, (ea, eb) in enumerate(zip(a["epochs"], b["epochs"])):
        for key in ("train_loss", "test_loss"):
            x, y = ea[key], eb[key]
            if abs(x - y) > rel * abs(x):
                fail(f"{what}: epoch {k + 1} {key} {x} against {y} (relative difference {abs(x - y) / abs(x):.2e})")
    largest, worst = largest_and_worst(a_dir, b_dir)
    bound, why = rel * largest, f"{rel} x the largest parameter, {largest:.3f}"
    if threads_dir:
        threads = largest_and_worst(a_dir, threads_dir)[1]
        if threads > bound:
            bound, why = threads, "1 process on 2 threads against 1 thread"
    if worst > bound:
        fail(f"{what}: parameters differ by up to {worst:.3e}, more than {bound:.3e} ({why})")
    print(f"{what}: losses within {rel} relative over {len(a['epochs'])} epochs; parameters differ by up to "
          f"{worst:.2e}, within {bound:.2e} ({why})")
    return b


def train_args(data, out, extra):
    return ["--data", data, "--out", out, "--batch", str(BATCH), "--threads", "1"] + extra


def same(ae_train, mpirun, work, model, sizes=None):
    extra = ["--model", model, "--epochs", "3"] + (["--sizes", sizes] if sizes else [])
    data = os.path.join(work, "data")
    run([ae_train] + train_args(data, os.path.join(work, "one"), extra))
    run([ae_train] + train_args(data, os.path.join(work, "threads"), extra + ["--threads", "2"]))
    r = run(mpirun_prefix(mpirun, 2) + [ae_train] + train_args(data, os.path.join(work, "two"), extra))
    if r.stdout.count("report:") != 1:
        fail(f"expected rank 0 alone to print its summary, got:\n{r.stdout}")
    compare(os.path.join(work, "one"), os.path.join(work, "two"), f"{model} on 2 ranks against 1 process",
                      threads_dir=os.path.join(work, "threads"))
    with open(os.path.join(work, "two", "report.html")) as f:
        report = f.read()
    if "data-parallel on 2 ranks (mpi" not in report:
        fail("report.html does not say that the model was trained on 2 ranks")
    # AEGRAPH_OVERLAP_SUMS=1 (set by CMake for one test): the sums ran in flight (MPI_Iallreduce).
    if os.environ.get("AEGRAPH_OVERLAP_SUMS") == "1" and "(mpi, sums overlapped)" not in report:
        fail("AEGRAPH_OVERLAP_SUMS=1, yet report.html does not say that the sums were overlapped")


def resume(ae_train, mpirun, work):
    data = os.path.join(work, "data")
    straight, resumed = os.path.join(work, "straight"), os.path.join(work, "resumed")
    run([ae_train] + train_args(data, straight, ["--epochs", "4"]))
    run([ae_train] + train_args(data, os.path.join(work, "threads"), ["--epochs", "4", "--threads", "2"]))
    run(mpirun_prefix(mpirun, 2) + [ae_train] + train_args(data, resumed, ["--epochs", "2"]))
    run([ae_train, "--resume", "--out", resumed, "--data", data, "--epochs", "4", "--threads", "1"])
    compare(straight, resumed, "2 epochs on 2 ranks resumed on 1 process against 4 epochs on 1 process",
            threads_dir=os.path.join(work, "threads"))


def rank_pids(parent):
    """The ae-train processes mpirun started, by rank (from their environment)."""
    pids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
            if b"OMPI_COMM_WORLD_RANK" in env:
                pids[int(env[b"OMPI_COMM_WORLD_RANK"])] = int(entry)
        except (OSError, ValueError, IndexError):
            continue
    return pids


def killed(ae_train, mpirun, work):
    data, out = os.path.join(work, "data"), os.path.join(work, "killed")
    command = mpirun_prefix(mpirun, 2) + [ae_train] + train_args(data, out, ["--epochs", "1000", "--sizes", "784,64"])
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = os.path.join(out, "checkpoint.safetensors")
    deadline = time.monotonic() + 60
    while not os.path.exists(checkpoint):  # the ranks are training: an epoch has been written
        if job.poll() is not None or time.monotonic() > deadline:
            job.kill()
            out_text, err_text = job.communicate()
            fail(f"the job ended or stalled before its first checkpoint\nstdout: {out_text}\nstderr: {err_text}")
        time.sleep(0.05)
    pids = rank_pids(job.pid)
    if sorted(pids) != [0, 1]:
        job.kill()
        fail(f"expected ranks 0 and 1 under mpirun, found {pids}")
    os.kill(pids[1], signal.SIGKILL)
    start = time.monotonic()
    try:
        _, err_text = job.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        job.kill()
        fail("rank 1 was killed and the job was still running 30 s later (a hang)")
    seconds = time.monotonic() - start
    if job.returncode == 0:
        fail("rank 1 was killed, yet mpirun exited with 0")
    if "rank 1" not in err_text or "signal 9" not in err_text:
        fail(f"mpirun's error does not name the killed rank:\n{err_text}")
    if seconds > 10:
        fail(f"the job took {seconds:.1f} s to end after rank 1 was killed")
    if os.path.exists(os.path.join(out, "checkpoint.safetensors")):
        tensors = read_safetensors(checkpoint)  # whole: its header and byte ranges parse
        if not any(is_parameter(n) for n in tensors):
            fail("the checkpoint left behind holds no parameters")
    print(f"rank 1 killed: mpirun ended the job in {seconds:.2f} s with exit code {job.returncode}; "
          f"the checkpoint left is whole\n{err_text.strip()}")


def cuda(ae_train, mpirun, work):
    try:
        gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout.count("GPU ")
    except (OSError, subprocess.TimeoutExpired):
        gpus = 0
    if gpus < 2:
        print(f"skipped: NCCL needs 2 GPUs, this machine has {gpus}")
        sys.exit(77)
    data = os.path.join(work, "data")
    extra = ["--device", "cuda", "--epochs", "2", "--optimiser", "adam"]  # (Adam: see same())
    run([ae_train] + train_args(data, os.path.join(work, "one"), extra))
    run(mpirun_prefix(mpirun, 2) + [ae_train] + train_args(data, os.path.join(work, "two"), extra))
    compare(os.path.join(work, "one"), os.path.join(work, "two"), "ae on 2 GPUs (NCCL) against 1 GPU", rel=1e-4)


def main():
    if len(sys.argv) < 5:
        fail(__doc__)
    ae_train, mpirun, work, what = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    make_idx.write_folder(os.path.join(work, "data"), TRAIN_N, TEST_N)
    if what == "same":
        same(ae_train, mpirun, work, *sys.argv[5:7])
    elif what == "resume":
        resume(ae_train, mpirun, work)
    elif what == "killed":
        killed(ae_train, mpirun, work)
    elif what == "cuda":
        cuda(ae_train, mpirun, work)
    else:
        fail(f"unknown check '{what}'")


if __name__ == "__main__":
    main()
