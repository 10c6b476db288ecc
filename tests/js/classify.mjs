// Classify reviews with transformers.js, loading a model by repo id from a Hub-compatible server.
//
// Run by tests/test_transformers_js.py as a user's Node program would run: `pipeline('text-classification', repo)`
// with nothing of this project's code in between. Usage:
//   node classify.mjs TRANSFORMERS_JS_DIR < request.json > answers.json
// request.json: {"host": "http://127.0.0.1:PORT/", "repo": "user/name", "dtype": "fp32" | "q8",
//                "cache_dir": "...", "texts": ["...", ...]}
// answers.json: {"version": "...", "predictions": [[{"label": ..., "score": ...}, ...], ...]}, every label's score.
// TRANSFORMERS_JS_DIR is the folder where package.json's dependencies were installed (a cache outside the
// project); the package is imported from there, so this script needs no node_modules beside it.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const installDir = process.argv[2];
const entry = createRequire(join(installDir, "package.json")).resolve("@huggingface/transformers");
const { env, pipeline } = await import(pathToFileURL(entry).href);

const request = JSON.parse(readFileSync(0, "utf8"));
env.remoteHost = request.host; // the Hub's address; files come from {host}{repo}/resolve/main/{file}
env.allowRemoteModels = true;
env.allowLocalModels = false; // the repo id must come from the server, never from a folder of that name
env.cacheDir = request.cache_dir; // a fresh folder per run, so nothing is served from an earlier download

const classifier = await pipeline("text-classification", request.repo, { dtype: request.dtype, device: "cpu" });
const predictions = [];
for (const text of request.texts) {
  // One review per call, as a user classifying one text would: int8 activations are scaled per call.
  predictions.push(await classifier(text, { top_k: null }));
}
process.stdout.write(JSON.stringify({ version: env.version, predictions }));
