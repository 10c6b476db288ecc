#!/usr/bin/env bash
# The GPU session's script. Each GPU stage is one `run` call (the tool stops a call at 600 s; a stage
# stops starting work at $BUDGET s and packs what finished into $OUT/<stage>.tar.gz after every step).
# Plan, time estimates and what each stage answers: bench/NOTES.md, "GPU plan".
#
#   here: bash bench/gpu_run.sh prepare
#   GPU:  carry [".device"]:
#         source .device/setup.sh && bash bench/gpu_run.sh accuracy 2>&1 | tee $OUT/log-accuracy.txt
#   GPU:  carry [".device"]:
#         source .device/setup.sh && bash bench/gpu_run.sh speed 2>&1 | tee $OUT/log-speed.txt
#   GPU:  within 30 s of a call that carried .device (it staged the model in /tmp/stage), carry
#         [".device/data", ".device/wheels", ".device/setup.sh", ".device-mlm"]:
#         source .device/setup.sh && bash bench/gpu_run.sh mlm ["--flags for an extra fine-tune" ...] 2>&1 | tee $OUT/log-mlm.txt
#   GPU:  carry [".device"]: source .device/setup.sh && bash bench/gpu_run.sh tune "--learning_rate 8e-5" ... (variants of h100)
#   here: bash bench/gpu_run.sh collect FILES_AT...     (unpacks into results/, writes the comparison table)
#
# DRY_RUN=1 runs any stage here on CPU at small sizes (`make bench-gpu-dryrun` runs them all): a tiny
# random BERT for all-MiniLM-L6-v2, a tiny DistilBERT for the random one, the bundled sample, fp32,
# a few steps, results under /tmp/gpu-dryrun. It checks this script end to end before GPU time is
# spent on it; its figures say nothing about a GPU.
set -uo pipefail
stage=${1:?usage: bash bench/gpu_run.sh prepare|accuracy|speed|mlm|tune|collect [args]}
shift
MINILM_ID=sentence-transformers/all-MiniLM-L6-v2
GROUP_FIX=""
RANDOM_MODEL=distilbert-random            # bench.train_speed --model for the samples/s comparison
BENCH_FLAGS=""                            # added to every bench.train_speed call
THROUGHPUT=3200                           # reviews per ablation run
MLM_DATA=.device-mlm/unsupervised.parquet
MLM_OUT=/tmp/stage/mlm
MLM_FLAGS="--precision bf16 --block_size 512 --per_device_train_batch_size 64 --learning_rate 1e-4
  --num_train_epochs 3 --optim adamw_torch_fused --logging_steps 50"
RESULTS=results
TEST_REVIEWS=25000                        # collect: only runs on the whole test split can be "best"
export SMALL_FLAGS=""                     # added last to every training run of the `train` helper
WORK_ROOT=/tmp/gpu
if [[ ${DRY_RUN:-} == 1 ]]; then
  WORK_ROOT=${DRY_RUN_DIR:-/tmp/gpu-dryrun}
  export OUT=${OUT:-$WORK_ROOT/out} IMDB_DATA=$PWD/data/imdb_sample BASE_MODEL=$WORK_ROOT/tiny-bert
  BUDGET=${BUDGET:-100000}
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
BUDGET=${BUDGET:-560}
WORK=$WORK_ROOT/$stage

log() { echo "[$(date +%H:%M:%S) +${SECONDS}s] $*"; }

# step SECONDS_NEEDED COMMAND...: run it if the budget allows, never past the budget.
step() {
  local need=$1; shift
  local left=$((BUDGET - SECONDS))
  if ((left < need)); then log "SKIPPED (needs ~${need}s, ${left}s left): $*"; return 1; fi
  log "start: $*"
  # bash -c so that exported functions (train) run under timeout too; INT lets Python end cleanly.
  timeout --signal=INT --kill-after=15 "$left" bash -c '"$@"' step "$@"
  local code=$?
  log "exit $code: $1 $2 $3"
  pack
  return $code
}

# Small text and images only: results, cards, figures, benchmark tables, logs. Never weights or predictions.
pack() {
  [[ -d $WORK && -n ${OUT:-} ]] || return 0
  (cd "$WORK_ROOT" && find "$stage" -type f \( -name results.json -o -name mlm_results.json -o -name README.md \
      -o -name '*.png' -o -name 'train_speed_*' -o -name '*.log' -o -name 'preflight.txt' \) -print0 |
    tar --null -czf "$OUT/$stage.tar.gz" -T -)
}

# Later calls may carry no model: copy it where setup.sh looks when .device/model is absent.
stage_model() {
  if [[ ${DRY_RUN:-} != 1 && -d .device/model ]]; then mkdir -p /tmp/stage && cp -r .device/model /tmp/stage/; fi
}

# --group_by_length is only safe once run.py keeps predictions in row order; otherwise train without it.
preflight() {
  mkdir -p "$WORK"
  python -m bench.train_preflight --group_by_length > "$WORK/preflight.txt" 2>&1
  local code=$?
  tail -1 "$WORK/preflight.txt"
  if ((code == 3)); then
    GROUP_FIX="--group_by_length false"
    log "WARNING: predictions misaligned with --group_by_length: project recipes run with '$GROUP_FIX'"
  elif ((code != 0)); then
    log "WARNING: preflight failed (exit $code, $WORK/preflight.txt): recipes run unchanged"
  fi
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

export -f train
export WORK

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
  # Reference and project recipes on all-MiniLM-L6-v2, whole train and test splits: accuracy and the
  # train-time ratio, from one benchmark run. ~8 min: reference ~300 s, project ~100 s, start-up and cards.
  stage_model
  mkdir -p "$WORK/runs"
  preflight
  step 420 python -m bench.train_speed $BENCH_FLAGS --model minilm --name train_speed_minilm_accuracy --out "$WORK/tables" --work_dir "$WORK/runs" \
    --recipe "project=--preset h100 $GROUP_FIX" --recipe "reference=--preset reference --no_baseline"
  for run in "$WORK"/runs/accuracy-*/; do card "$run"; done
  pack
  ;;
speed)
  # Samples/s on the random DistilBERT (ratio and noise: each recipe twice), the LoRA run, the
  # time-to-accuracy noise (the project recipe again on MiniLM), then one-change-at-a-time ablations.
  stage_model
  mkdir -p "$WORK/runs"
  preflight
  step 150 python -m bench.train_speed $BENCH_FLAGS --model $RANDOM_MODEL --repeat 2 --name train_speed_throughput \
    --out "$WORK/tables" \
    --work_dir "$WORK/runs/throughput" --recipe "reference=--preset reference" --recipe "project=--preset h100 $GROUP_FIX"
  step 110 train lora --preset h100-lora $GROUP_FIX && card "$WORK/runs/lora"
  step 110 python -m bench.train_speed $BENCH_FLAGS --model minilm --name train_speed_minilm_accuracy_repeat --out "$WORK/tables" \
    --work_dir "$WORK/runs/repeat" --recipe "project=--preset h100 $GROUP_FIX"
  for run in "$WORK"/runs/repeat/accuracy-*/; do card "$run"; done
  # Each change alone on top of the reference settings, then the project recipe with compile, batch 128, and
  # its 4 data workers off or kept alive (on CPU, worker start-up cost more than the workers saved).
  step 60 python -m bench.train_speed $BENCH_FLAGS --model $RANDOM_MODEL --name train_speed_ablation \
    --out "$WORK/tables" --work_dir "$WORK/runs/ablation" --throughput_samples $THROUGHPUT \
    --recipe "reference=--preset reference" \
    --recipe "bf16=--preset reference --precision bf16" \
    --recipe "no-checkpointing=--preset reference --gradient_checkpointing false" \
    --recipe "dynamic-padding=--preset reference --pad_to_max_length false" \
    --recipe "dynamic+grouped=--preset reference --pad_to_max_length false --group_by_length" \
    --recipe "batch64=--preset reference --per_device_train_batch_size 64" \
    --recipe "fused-adamw=--preset reference --optim adamw_torch_fused" \
    --recipe "eager-attention=--preset reference --attn_implementation eager" \
    --recipe "workers4=--preset reference --dataloader_num_workers 4" \
    --recipe "project+compile=--preset h100 $GROUP_FIX --torch_compile" \
    --recipe "project-batch128=--preset h100 $GROUP_FIX --per_device_train_batch_size 128 --learning_rate 5.7e-5" \
    --recipe "project-workers0=--preset h100 $GROUP_FIX --dataloader_num_workers 0" \
    --recipe "project-persistent-workers=--preset h100 $GROUP_FIX --dataloader_persistent_workers"
  pack
  ;;
mlm)
  # Within-task masked-LM pre-training on the 50,000 unlabelled reviews, then the project recipe from it.
  # Extra arguments: flag strings for further fine-tunes from the same adapted encoder.
  mkdir -p "$WORK/runs"
  preflight
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
    step 110 train "mlm-$i" --preset h100 $GROUP_FIX $flags \
      && cp "$MLM_OUT/mlm_results.json" "$WORK/runs/mlm-$i/" && card "$WORK/runs/mlm-$i"
  done
  pack
  ;;
tune)
  # Variants of the project recipe on all-MiniLM-L6-v2, each a flag string added to --preset h100.
  stage_model
  mkdir -p "$WORK/runs"
  preflight
  i=0
  for flags in "$@"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    step 110 train "tune-$i" --preset h100 $GROUP_FIX $flags && card "$WORK/runs/tune-$i"
  done
  pack
  ;;
collect)
  rm -rf "$WORK_ROOT/collected" && mkdir -p "$WORK_ROOT/collected"
  for dir in "$@"; do
    for tarball in "$dir"/*.tar.gz; do tar -xzf "$tarball" -C "$WORK_ROOT/collected"; done
  done
  python -m bench.train_compare "$WORK_ROOT/collected" --results "$RESULTS" --test_reviews "$TEST_REVIEWS"
  ;;
*)
  echo "unknown stage $stage: prepare, accuracy, speed, mlm, tune or collect" >&2; exit 2
  ;;
esac
