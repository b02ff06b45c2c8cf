"""Opens ae-train's report.html in headless Chromium and checks that it renders without console
errors, that every picture loads and is shown magnified with square pixels, and that the SVG loss
curves are there. Exits 77 (ctest: skipped) when Chromium is not installed (make browser-deps).
Usage: check_report.py AE_TRAIN WORK_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import make_idx  # noqa: E402

SKIP = 77

# A page that loads the report in a frame and writes what it finds there into <pre id="result">,
# which --dump-dom prints (file: pages may read each other with --allow-file-access-from-files).
PROBE = """<!DOCTYPE html><html><body><iframe id="f" src="run/report.html" width="1200" height="4000"></iframe>
<script>
document.getElementById("f").onload = () => {
  const d = document.getElementById("f").contentDocument;
  const images = [...d.images].map(i => ({src: i.getAttribute("src"), loaded: i.complete && i.naturalWidth > 0,
    natural: [i.naturalWidth, i.naturalHeight], shown: [i.width, i.height], rendering: getComputedStyle(i).imageRendering}));
  const result = {svgs: d.querySelectorAll("svg").length, curves: d.querySelectorAll("svg polyline").length, images};
  const pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
};
</script></body></html>
"""


def fail(message):
    print(f"check_report.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    ae_train, work = sys.argv[1], sys.argv[2]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("SKIPPED: Chromium is not installed (make browser-deps installs it); report.html not checked in a browser")
        sys.exit(SKIP)
    shutil.rmtree(work, ignore_errors=True)
    make_idx.write_folder(os.path.join(work, "data"), 300, 100)
    subprocess.run([ae_train, "--model", "ae", "--sizes", "784,32", "--epochs", "2", "--threads", "1",
                    "--data", os.path.join(work, "data"), "--out", os.path.join(work, "run")],
                   check=True, stdout=subprocess.DEVNULL)
    probe = os.path.join(work, "probe.html")
    with open(probe, "w") as f:
        f.write(PROBE)
    # --no-sandbox: Chromium's sandbox refuses to run as root, as `make test` may.
    out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                          "file://" + os.path.abspath(probe)], capture_output=True, text=True, timeout=120)
    console = [line for line in out.stderr.splitlines() if ":CONSOLE" in line]
    if console:
        fail("the page logged to the console:\n" + "\n".join(console))
    found = re.search(r'<pre id="result">(.*?)</pre>', out.stdout, re.S)
    if out.returncode != 0 or not found:
        fail(f"Chromium (exit {out.returncode}) gave no result:\n{out.stderr[-2000:]}")
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    print(json.dumps(result, indent=1))
    if result["svgs"] != 1 or result["curves"] < 2:
        fail(f"expected one SVG chart with the train and test curves, found {result['svgs']} charts, {result['curves']} curves")
    pictures = {i["src"] for i in result["images"]}
    if not {"reconstructions.png", "filters.png"} <= pictures:
        fail(f"the report shows {sorted(pictures)}, not the reconstructions and filters")
    for image in result["images"]:
        if not image["loaded"]:
            fail(f"{image['src']} did not load")
        if image["shown"][0] < 2 * image["natural"][0] or image["rendering"] != "pixelated":
            fail(f"{image['src']}: {image['natural']} pixels shown as {image['shown']}, {image['rendering']}")
    print("report.html renders in Chromium: no console errors, every picture loaded and magnified, the curves drawn")


if __name__ == "__main__":
    main()
