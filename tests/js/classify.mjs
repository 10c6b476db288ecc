// Classify reviews with transformers.js, loading a model by repo id from a Hub-compatible server.
//
// Run by tests/test_transformers_js.py as a user's Node program would run: `pipeline('text-classification', repo)`
// with nothing of this project's code in between. Usage:
//   node classify.mjs TRANSFORMERS_JS_DIR < request.json > answers.json
// request.json: {"host": "http://127.0.0.1:PORT/", "repo": "user/name", "dtype": "fp32" | "q8",
//                "cache_dir": "...", "texts": ["...", ...], "output": "pipeline" (default) | "logits"}
// answers.json: {"version": "...", "predictions": [[{"label": ..., "score": ...}, ...], ...]}, every label's
// score; with "output": "logits", "predictions": [[logit, ...], ...], the model's raw outputs: how a rating
// model's rating is read, since the text-classification pipeline softmaxes its one output into 1 (it applies
// a sigmoid for problem_type "multi_label_classification", a softmax for anything else, "regression" too).
// TRANSFORMERS_JS_DIR is the folder where package.json's dependencies were installed (a cache outside the
// project); the package is imported from there, so this script needs no node_modules beside it.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const installDir = process.argv[2];
const entry = createRequire(join(installDir, "package.json")).resolve("@huggingface/transformers");
const { env, pipeline, AutoTokenizer, AutoModelForSequenceClassification } = await import(
  pathToFileURL(entry).href
);

const request = JSON.parse(readFileSync(0, "utf8"));
env.remoteHost = request.host; // the Hub's address; files come from {host}{repo}/resolve/main/{file}
env.allowRemoteModels = true;
env.allowLocalModels = false; // the repo id must come from the server, never from a folder of that name
env.cacheDir = request.cache_dir; // a fresh folder per run, so nothing is served from an earlier download

const predictions = [];
if (request.output === "logits") {
  // The model called directly: the way to read a rating model's value (see above).
  const tokenizer = await AutoTokenizer.from_pretrained(request.repo);
  const model = await AutoModelForSequenceClassification.from_pretrained(request.repo, {
    dtype: request.dtype,
    device: "cpu",
  });
  for (const text of request.texts) {
    const { logits } = await model(tokenizer(text, { truncation: true }));
    predictions.push(Array.from(logits.data));
  }
} else {
  const options = { dtype: request.dtype, device: "cpu" };
  const classifier = await pipeline("text-classification", request.repo, options);
  for (const text of request.texts) {
    // One review per call, as a user classifying one text would: int8 activations are scaled per call.
    predictions.push(await classifier(text, { top_k: null }));
  }
}
process.stdout.write(JSON.stringify({ version: env.version, predictions }));
