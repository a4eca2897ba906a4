"""A static page that runs an exported model in the browser: transformers.js over the ONNX export.

`textmaker export MODEL --format web --output site/` writes a folder to open from any static
host (or `python -m http.server` in it): index.html, the verified ONNX export under model/, and
transformers.js with its ONNX Runtime WebAssembly files under vendor/. Nothing is fetched from a
CDN and nothing downloads at run time; the page classifies typed text (a question answerer: answers
a question on a pasted paragraph). transformers.js is taken from an npm install
(`npm install @huggingface/transformers`), found under ./node_modules or given as a folder.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from textmaker.errors import TextmakerError
from textmaker.export.exporter import export
from textmaker.io import atomic_directory, check_output, output_lock, write_text

PACKAGE = "@huggingface/transformers"
# file in the site's vendor/ -> where it is in the npm packages
# (ONNX Runtime's WebAssembly build for the "wasm" device, which every browser has; WebGPU's is
# larger and not needed for a model this size.)
RUNTIME = {"transformers.min.js": ("@huggingface/transformers", "dist/transformers.min.js"),
           "ort-wasm-simd-threaded.asyncify.mjs": ("onnxruntime-web", "dist/ort-wasm-simd-threaded.asyncify.mjs"),
           "ort-wasm-simd-threaded.asyncify.wasm": ("onnxruntime-web", "dist/ort-wasm-simd-threaded.asyncify.wasm")}
DTYPES = {"none": "fp32", "float16": "fp16", "dynamic": "q8", "int8": "int8"}


def find_node_modules(given: str | Path | None = None) -> Path:
    """The node_modules folder holding transformers.js: `given`, else ./node_modules or a parent's."""
    candidates = [Path(given)] if given else [p / "node_modules" for p in [Path.cwd(), *Path.cwd().parents]]
    for c in candidates:
        if (c / PACKAGE / "package.json").is_file():
            return c
        if given and (c / "node_modules" / PACKAGE / "package.json").is_file():
            return c / "node_modules"
    where = f"in {given}" if given else "in ./node_modules or above"
    raise TextmakerError(f"transformers.js not found {where}; run `npm install {PACKAGE}` here (or pass "
                         f"--transformers-js PATH/TO/node_modules)")


def _runtime_file(node_modules: Path, package: str, rel: str) -> Path:
    for root in (node_modules / package, node_modules / PACKAGE / "node_modules" / package):
        if (root / rel).is_file():
            return root / rel
    raise TextmakerError(f"{node_modules}: {package}/{rel} is missing; reinstall with `npm install {PACKAGE}`")


def write_site(task, directory: str | Path, quantization: str = "dynamic", transformers_js=None,
               representative_data=None, tolerance=None, verbose: bool = True) -> dict:
    """The page, the verified ONNX export it runs, and the runtime; returns the export's metadata."""
    node_modules = find_node_modules(transformers_js)
    files = {name: _runtime_file(node_modules, *where) for name, where in RUNTIME.items()}
    directory = check_output(directory, overwrite=True, flag="web directory")
    with output_lock(directory), atomic_directory(directory) as tmp:
        meta = export(task, tmp / "model", "onnx", quantization, representative_data, tolerance, verbose=verbose)
        for name, source in files.items():
            (tmp / "vendor").mkdir(exist_ok=True)
            shutil.copyfile(source, tmp / "vendor" / name)
        write_text(tmp / "index.html", page(meta["task"], DTYPES[meta["quantization"]],
                                            meta.get("label_names")))
    return meta


def page(task: str, dtype: str, labels: list[str] | None) -> str:
    classify = task == "text_classifier"
    title = "Text classifier" if classify else "Question answering"
    inputs = ('<textarea id="text" rows="4" cols="70" placeholder="Type a sentence"></textarea>' if classify else
              '<input id="question" size="70" placeholder="Question"><br>\n'
              '<textarea id="context" rows="10" cols="70" placeholder="Paste a paragraph"></textarea>')
    run = ("const out = await pipe(document.getElementById('text').value, { top_k: null });\n"
           "    result.innerHTML = out.map(o => `<li>${o.label} ${o.score.toFixed(3)}</li>`).join('');\n"
           "    result.dataset.label = out[0].label; result.dataset.score = out[0].score;"
           if classify else
           "const out = await pipe(document.getElementById('question').value,\n"
           "                            document.getElementById('context').value);\n"
           "    result.textContent = out.answer; result.dataset.answer = out.answer; result.dataset.score = out.score;")
    known = f"<p>Labels: {html.escape(', '.join(labels))}</p>" if labels else ""
    pipeline_task = "text-classification" if classify else "question-answering"
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} (textmaker)</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; }} li {{ font-family: monospace; }}</style>
</head>
<body>
<h1>{title}</h1>
<p>Runs in this browser: the model and its runtime are files beside this page; nothing is sent anywhere.</p>
{known}
{inputs}
<br><button id="run" disabled>{'Classify' if classify else 'Answer'}</button>
<p id="status">Loading the model...</p>
<ol id="result"></ol>
<script type="module">
import {{ env, pipeline }} from "./vendor/transformers.min.js";
env.allowRemoteModels = false;  // the model is ./model, nothing downloads
env.allowLocalModels = true;
// Relative, not an absolute URL: transformers.js 4.3 checks for local files (the tokenizer's) only
// at paths that are not http(s) URLs.
env.localModelPath = "./";
env.backends.onnx.wasm.wasmPaths = new URL("./vendor/", location.href).href;
env.backends.onnx.wasm.numThreads = 1;  // threads need cross-origin isolation headers a plain host lacks
const status = document.getElementById("status"), result = document.getElementById("result");
const button = document.getElementById("run");
try {{
  const pipe = await pipeline("{pipeline_task}", "model", {{ dtype: "{dtype}", device: "wasm" }});
  status.textContent = "Ready."; status.dataset.ready = "1"; button.disabled = false;
  button.onclick = async () => {{
    status.textContent = "Running...";
    {run}
    status.textContent = "Done.";
  }};
}} catch (e) {{
  status.textContent = "Could not load the model: " + e; status.dataset.error = "1";
}}
</script>
</body>
</html>
"""
