#!/usr/bin/env bash
# The GPU benchmark plan as one script: the reference recipe against the project's on all-MiniLM-L6-v2
# (test accuracy on all 25,000 reviews, train-time and samples/s ratios, MFU, peak memory), the samples/s
# pair on a DistilBERT-shaped random model, LoRA, and the ablations, in priority order, within a budget of
# GPU seconds. It is built for two calls on one GPU machine within 15 minutes of machine time in all
# (start-up, both calls, the gap between them and idle time counted). Plan, time estimate per step, and
# what to do when a call runs short: bench/NOTES.md, "GPU plan: two calls in 15 minutes". No GPU figure
# exists yet.
#
#   here:        bash bench/gpu_run.sh prepare     (.device/: IMDb, wheels, the fp16 model; prints the size)
#   GPU, call 1: with .device/ beside the working tree, time limit 540 s ($OUT: the folder that comes back):
#                source .device/setup.sh && BUDGET=480 bash bench/gpu_run.sh accuracy 2>&1 | tee $OUT/log-accuracy.txt
#   GPU, call 2: at once (the machine keeps /tmp about 30 s: steps call 1 finished are skipped),
#                B = the GPU seconds left after call 1 - 45, time limit B + 30 s:
#                source .device/setup.sh && BUDGET=B bash bench/gpu_run.sh speed 2>&1 | tee $OUT/log-speed.txt
#   here:        bash bench/gpu_run.sh collect DIR_1 DIR_2   (the calls' $OUT folders -> results/, the comparison)
#   further calls (not part of the two): `tune "FLAGS" ...` (variants of the project recipe on MiniLM),
#   `mlm` (masked-LM stage, then the project recipe from it).
#
# A stage works down its steps in priority order. A step starts only if its estimated GPU seconds fit in
# what is left of $BUDGET, and is stopped at the budget. A step that finished is marked in
# $WORK_ROOT/done, so a second call on the same (warm) machine skips it. Everything finished is packed
# into $OUT/<stage>.tar.gz every 15 s and after every step (results.json, cards, figures, benchmark
# tables, logs; never weights or predictions): a call stopped at its limit still returns it.
#
# DRY_RUN=1 runs any stage here on CPU at small sizes (`make bench-gpu-dryrun` runs them all): a tiny
# random BERT for all-MiniLM-L6-v2, a tiny DistilBERT for the random one, the bundled sample, fp32,
# a few steps, results under /tmp/gpu-dryrun. It checks this script end to end before GPU time is
# spent on it; its figures say nothing about a GPU.
set -uo pipefail
# The GPU image's Python is `python3` (a venv, which also has `python`); use python3 where `python` is missing.
command -v python > /dev/null || { python() { python3 "$@"; }; export -f python; }
stage=${1:?usage: bash bench/gpu_run.sh prepare|accuracy|speed|tune|mlm|collect [args]}
shift
export MINILM_ID=sentence-transformers/all-MiniLM-L6-v2
# The recipes (each can be set from the environment). The project recipe is the h100 preset; its "before
# fine-tuning" row reads 2,000 stratified test reviews instead of all 25,000 (~5 s less per run). The
# reference recipe runs whole: shortening it is honest for its time only (bench/NOTES.md, "GPU plan").
PROJECT=${PROJECT:-"--preset h100 --baseline_samples 2000"}
LORA=${LORA:-"--preset h100-lora --baseline_samples 2000"}
REFERENCE=${REFERENCE:-"--preset reference --no_baseline"}
DONE=${DONE:-}                            # steps to skip as done, e.g. DONE="samples-per-s lora" on a fresh machine
GROUP_FIX=""                              # set by the preflight if length grouping misorders predictions
RANDOM_MODEL=distilbert-random            # bench.train_speed --model for the samples/s comparison
BENCH_FLAGS=""                            # added to every bench.train_speed call
THROUGHPUT=3200                           # reviews per ablation run (the samples/s pair: 6,400)
PREFLIGHT=${PREFLIGHT:-0}                 # ~20 s of GPU time: off on the GPU (run.py's fix; the val check)
MLM_DATA=.device-mlm/unsupervised.parquet
MLM_OUT=/tmp/stage/mlm
MLM_FLAGS="--precision bf16 --block_size 512 --per_device_train_batch_size 64 --learning_rate 1e-4
  --num_train_epochs 3 --optim adamw_torch_fused --logging_steps 50"
RESULTS=results
TEST_REVIEWS=25000                        # collect: only runs on the whole test split can be "best"
export SMALL_FLAGS=""                     # added last to every training run of the `train` helper
WORK_ROOT=/tmp/gpu
PACK_EVERY=15
if [[ ${DRY_RUN:-} == 1 ]]; then
  WORK_ROOT=${DRY_RUN_DIR:-/tmp/gpu-dryrun}
  export OUT=${OUT:-$WORK_ROOT/out} IMDB_DATA=$PWD/data/imdb_sample BASE_MODEL=$WORK_ROOT/tiny-bert
  export HF_HUB_OFFLINE=1                 # as .device/setup.sh sets it: the GPU machine reaches no Hub
  BUDGET=${BUDGET:-100000} PREFLIGHT=1
  mkdir -p "$OUT"
  [[ -f $BASE_MODEL/config.json ]] || python -m bench.random_models tiny-bert "$BASE_MODEL" > /dev/null || exit 1
  RANDOM_MODEL=tiny-random BENCH_FLAGS=--dry_run THROUGHPUT=160
  MLM_DATA=$PWD/data/imdb_sample/train.parquet MLM_OUT=$WORK_ROOT/mlm-model
  MLM_FLAGS="--precision fp32 --block_size 64 --max_samples 200 --per_device_train_batch_size 16 --max_steps 4
    --logging_steps 1"
  RESULTS=$WORK_ROOT/results TEST_REVIEWS=64   # the dry-run's test split: --max_test_samples 64
  SMALL_FLAGS="--precision fp32 --max_length 128 --window_stride 32 --validation_size 0.2 --max_train_samples 96
    --max_eval_samples 32 --max_test_samples 64 --num_train_epochs 1 --logging_steps 2"
fi
case $stage in accuracy) BUDGET=${BUDGET:-480} ;; *) BUDGET=${BUDGET:-200} ;; esac
WORK=$WORK_ROOT/$stage

log() { echo "[$(date +%H:%M:%S) +${SECONDS}s] $*"; }

# step SECONDS_NEEDED COMMAND...: run it if the budget allows, never past the budget (nor past $CAP seconds).
step() {
  local need=$1; shift
  local left=$((BUDGET - SECONDS))
  if ((left < need)); then log "SKIPPED (needs ~${need}s, ${left}s left): $*"; return 1; fi
  local limit=$left
  [[ -n ${CAP:-} ]] && ((CAP < limit)) && limit=$CAP
  log "start: $*"
  # bash -c so that exported functions (train) run under timeout too; INT lets Python end cleanly.
  timeout --signal=INT --kill-after=15 "$limit" bash -c '"$@"' step "$@"
  local code=$?
  log "exit $code: $1 $2 $3"
  pack
  return $code
}

# task NAME SECONDS_NEEDED COMMAND...: a step that a call on the same machine does only once.
task() {
  local name=$1; shift
  if [[ -f $WORK_ROOT/done/$name ]]; then log "already done by an earlier call on this machine: $name"; return 0; fi
  step "$@" && touch "$WORK_ROOT/done/$name"
}

# Small text and images only: results, cards, figures, benchmark tables, logs. Never weights or predictions.
# Written beside and renamed, so that $OUT always holds a whole tarball.
pack() {
  [[ -d $WORK && -n ${OUT:-} ]] || return 0
  local tmp="$OUT/.$stage.$BASHPID.tmp"
  (cd "$WORK_ROOT" && find "$stage" -type f \( -name results.json -o -name mlm_results.json -o -name README.md \
      -o -name '*.png' -o -name 'train_speed_*' -o -name '*.log' -o -name preflight.txt -o -name peak.txt \) -print0 |
    tar --null -czf "$tmp" -T -) && mv -f "$tmp" "$OUT/$stage.tar.gz"
  rm -f "$tmp"
}

# Packs every PACK_EVERY s in the background until the stage ends: a call stopped at its time limit
# between two steps still returns the runs that finished.
start_packer() {
  [[ -n ${OUT:-} ]] || return 0
  (nap=""; trap 'kill $nap 2>/dev/null; exit 0' TERM
   while :; do sleep "$PACK_EVERY" & nap=$!; wait $nap; pack; done) &
  PACKER=$!
  trap 'kill $PACKER 2>/dev/null; wait $PACKER 2>/dev/null; pack' EXIT
}

# A later call may come without the model: copy it where setup.sh looks when .device/model is absent.
stage_model() {
  if [[ ${DRY_RUN:-} != 1 && -d .device/model ]]; then mkdir -p /tmp/stage && cp -r .device/model /tmp/stage/; fi
}

# The GPU's own bf16 matmul rate (8192^3 on random data, median of 10 after 3 warm-ups), once per machine:
# MFU is counted against it (the H100 here: 790 TFLOP/s; H200s here: 769-798).
measure_peak() {
  [[ ${DRY_RUN:-} == 1 ]] && return 0
  local file=$WORK_ROOT/peak_tflops.txt
  [[ -s $file ]] || python - > "$file" 2> "$WORK/peak.log" <<'EOF'
import statistics, torch
n = 8192
a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
for _ in range(3):
    a @ b
torch.cuda.synchronize()
times = []
for _ in range(10):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(); a @ b; end.record(); end.synchronize()
    times.append(start.elapsed_time(end) / 1e3)
print(f"{2 * n**3 / statistics.median(times) / 1e12:.0f}")
EOF
  local peak; peak=$(cat "$file" 2>/dev/null)
  if [[ $peak =~ ^[0-9]+$ ]]; then
    BENCH_FLAGS="$BENCH_FLAGS --peak_tflops $peak"
    echo "bf16 matmul 8192^3: $peak TFLOP/s on $(nvidia-smi --query-gpu=name --format=csv,noheader)" > "$WORK/peak.txt"
    log "measured bf16 peak: $peak TFLOP/s (MFU is counted against it)"
  else
    rm -f "$file"; log "WARNING: peak not measured ($WORK/peak.log): MFU against 790 TFLOP/s"
  fi
}

# --group_by_length is only safe once run.py keeps predictions in row order; otherwise train without it.
preflight() {
  python -m bench.train_preflight --group_by_length > "$WORK/preflight.txt" 2>&1
  local code=$?
  tail -1 "$WORK/preflight.txt"
  if ((code == 3)); then
    GROUP_FIX="--no_group_by_length"
    log "WARNING: predictions misaligned with --group_by_length: project recipes run with '$GROUP_FIX'"
  elif ((code != 0)); then
    log "WARNING: preflight failed (exit $code, $WORK/preflight.txt): recipes run unchanged"
  fi
}

begin() {
  stage_model
  mkdir -p "$WORK/runs" "$WORK_ROOT/done"
  for name in $DONE; do touch "$WORK_ROOT/done/$name"; done
  start_packer
  measure_peak
  ((PREFLIGHT == 1)) && preflight
  P="$PROJECT $GROUP_FIX"
}

card() {  # card RUN_DIR: the model card and its figures, naming the real base model
  [[ -f $1/results.json ]] && python -m model_card build "$1" --base_model "$MINILM_ID" > /dev/null && log "card: $1/README.md"
}

train() {  # train NAME FLAGS...: one run of the training command under $WORK/runs/NAME, from ${MODEL:-$BASE_MODEL}
  local name=$1; shift
  python -m train --model_name_or_path "${MODEL:-$BASE_MODEL}" --dataset_name "$IMDB_DATA" --report_to tensorboard \
    --output_dir "$WORK/runs/$name" --overwrite_output_dir "$@" $SMALL_FLAGS > "$WORK/runs/$name.log" 2>&1
  local code=$?
  tail -2 "$WORK/runs/$name.log"
  return $code
}

train_and_card() {  # train_and_card NAME FLAGS...
  train "$@" && card "$WORK/runs/$1"
}

export -f log train card train_and_card
export WORK

# The steps both calls share, in priority order.

# Samples/s of the reference settings and the project recipe on the random DistilBERT, one pass over the
# same 6,400 reviews each (target: 5x). ~60 s.
samples_per_s() {
  task samples-per-s 75 python -m bench.train_speed $BENCH_FLAGS --model $RANDOM_MODEL --name train_speed_throughput \
    --out "$WORK/tables" --work_dir "$WORK/runs/throughput" \
    --recipe "reference=--preset reference" --recipe "project=$P"
}

# LoRA on all-MiniLM-L6-v2, whole train and test splits (target: 91.5%). ~90 s.
lora() {
  task lora 100 train_and_card lora $LORA $GROUP_FIX
}

# What the CPU work found, measured on the GPU: the project recipe on the random DistilBERT with one
# setting changed (attention dropout back to the checkpoint's, random instead of length-grouped batches,
# fp16 and fp32 instead of bf16, no hidden dropout). The project runs again first: the ratio's noise.
# ~18 s a recipe; stopped after 150 s, each finished row kept.
ablation() {
  CAP=150 task ablation 45 python -m bench.train_speed $BENCH_FLAGS --model $RANDOM_MODEL --name train_speed_ablation \
    --out "$WORK/tables" --work_dir "$WORK/runs/ablation" --throughput_samples $THROUGHPUT \
    --baseline project --target project \
    --recipe "project=$P" \
    --recipe "attention-dropout-0.1=$P --attention_dropout 0.1" \
    --recipe "random-batches=$P --no_group_by_length" \
    --recipe "fp16=$P --precision fp16" \
    --recipe "dropout-0=$P --dropout 0" \
    --recipe "fp32=$P --precision fp32"
}

# The same two dropout settings for accuracy: the project recipe on all-MiniLM-L6-v2 without any dropout
# (as the cpu preset trains), then with the checkpoint's attention dropout. ~95 s each.
dropout_accuracy() {
  task minilm-dropout-0 100 train_and_card minilm-dropout-0 $P --dropout 0
  task minilm-attention-dropout-0.1 100 train_and_card minilm-attention-dropout-0.1 $P --attention_dropout 0.1
}

# Each change alone on top of the reference settings (what the 5x is made of), as long as time is left.
ablation_reference() {
  task ablation-reference 45 python -m bench.train_speed $BENCH_FLAGS --model $RANDOM_MODEL \
    --name train_speed_ablation_reference --out "$WORK/tables" --work_dir "$WORK/runs/ablation-reference" \
    --throughput_samples $THROUGHPUT --baseline reference --target reference \
    --recipe "reference=--preset reference" \
    --recipe "bf16=--preset reference --precision bf16" \
    --recipe "no-checkpointing=--preset reference --gradient_checkpointing false" \
    --recipe "dynamic+grouped=--preset reference --pad_to_max_length false --group_by_length" \
    --recipe "batch64=--preset reference --per_device_train_batch_size 64"
}

case $stage in
prepare)
  # One call carries model, data and wheels if the tree leaves room; otherwise the model goes first,
  # in a call of its own (bench/NOTES.md, "GPU plan").
  ../shared/device/prepare.sh || { echo "falling back to two-call staging"; ../shared/device/prepare.sh --split; } || exit 1
  mkdir -p .device-mlm
  grep -qxF /.device-mlm/ .git/info/exclude || echo /.device-mlm/ >> .git/info/exclude
  cp ../shared/data/imdb/unsupervised.parquet .device-mlm/
  du -sh .device .device-mlm
  ;;
accuracy)
  # Call 1. The reference and the project recipe on all-MiniLM-L6-v2, whole train and test splits, side by
  # side in one benchmark run: test accuracy on the 25,000 reviews, the train-time ratio, samples/s, MFU,
  # test reviews/s. ~360 s; then, while the budget lasts, the first steps of call 2.
  begin
  step 360 python -m bench.train_speed $BENCH_FLAGS --model minilm --name train_speed_minilm_accuracy --out "$WORK/tables" \
    --work_dir "$WORK/runs" --recipe "project=$P" --recipe "reference=$REFERENCE"
  for run in "$WORK"/runs/accuracy-*/; do card "$run"; done
  samples_per_s
  lora
  ;;
speed)
  # Call 2: what call 1 left, in priority order (each step skipped if call 1 finished it on this machine).
  begin
  samples_per_s
  lora
  ablation
  dropout_accuracy
  ablation_reference
  ;;
mlm)
  # Within-task masked-LM pre-training on the 50,000 unlabelled reviews, then the project recipe from it.
  # Extra arguments: flag strings for further fine-tunes from the same adapted encoder.
  begin
  [[ -f $MLM_DATA ]] || { log "no $MLM_DATA: carry .device-mlm"; exit 1; }
  # shellcheck disable=SC2086  # the flag strings are meant to split
  step 200 python -m train.mlm --model_name_or_path "$BASE_MODEL" --dataset_name "$MLM_DATA" \
    --output_dir "$MLM_OUT" --overwrite_output_dir $MLM_FLAGS > "$WORK/mlm.log" 2>&1
  tail -3 "$WORK/mlm.log"
  cp "$MLM_OUT/mlm_results.json" "$WORK/" 2>/dev/null
  export MODEL=$MLM_OUT
  i=0
  for flags in "" "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086  # the flag strings are meant to split
    step 110 train "mlm-$i" $P $flags \
      && cp "$MLM_OUT/mlm_results.json" "$WORK/runs/mlm-$i/" && card "$WORK/runs/mlm-$i"
  done
  ;;
tune)
  # Variants of the project recipe on all-MiniLM-L6-v2, each a flag string added to it.
  begin
  i=0
  for flags in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    step 110 train_and_card "tune-$i" $P $flags
  done
  ;;
collect)
  rm -rf "$WORK_ROOT/collected" && mkdir -p "$WORK_ROOT/collected"
  for dir in "$@"; do
    for tarball in "$dir"/*.tar.gz; do tar -xzf "$tarball" -C "$WORK_ROOT/collected"; done
  done
  python -m bench.train_compare "$WORK_ROOT/collected" --results "$RESULTS" --test_reviews "$TEST_REVIEWS"
  ;;
*)
  echo "unknown stage $stage: prepare, accuracy, speed, tune, mlm or collect" >&2; exit 2
  ;;
esac
