// transformers.js on a textmaker ONNX export directory, as a Node or browser app would load it.
// usage: node run_export.mjs EXPORT_DIR TASK DTYPE INPUTS.json  -> JSON results on stdout
import fs from "node:fs";
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const [dir, task, dtype, inputsPath] = process.argv.slice(2);
env.allowRemoteModels = false; // nothing downloads: the directory is the model
env.localModelPath = path.dirname(path.resolve(dir));
const pipe = await pipeline(task, path.basename(dir), { dtype });
const inputs = JSON.parse(fs.readFileSync(inputsPath, "utf8"));
const out = [];
for (const x of inputs) { // one input per call, as an app classifies what a user typed
  out.push(task === "text-classification" ? await pipe(x, { top_k: null })
                                          : await pipe(x.question, x.context));
}
process.stdout.write(JSON.stringify(out));
