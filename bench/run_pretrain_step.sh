#!/usr/bin/env bash
# Full pretraining steps of ELECTRA-Small (B=32, L=128): ours (streaming TFRecord shards built
# from ../shared/data/corpus through the real input pipeline) alternately with TF Model Garden,
# ROUNDS times, float32 and mixed_bfloat16; once each: ours on an in-memory batch (the peers'
# workload), Model Garden with mixed_bfloat16 (it fails: dtype error), transformers float32.
# transformers with bfloat16 autocast took 15+ minutes a run on this CPU: skipped.
# Appends JSON lines (with peak RSS) to bench/results/pretrain_step.jsonl, then summarizes.
# Needs the peers' venvs: ../shared/peers/setup.sh.   Usage: bench/run_pretrain_step.sh [ROUNDS]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
peers=${PEERS_DIR:-$HOME/.cache/electra-peers}
shared=${SHARED_DIR:-../shared}
out=bench/results/pretrain_step.jsonl
B=${BATCH:-32}; L=${SEQ:-128}; STEPS=${STEPS:-5}
vocab=$shared/data/vocab/corpus-wordpiece-30522.txt
shards=${SHARDS:-runs/electra-bench-shards}
mkdir -p bench/results
if [ ! -f "$shards/dataset_info.json" ]; then
  .venv/bin/python build_pretraining_dataset.py --input "$shared/data/corpus/web.txt" \
    --output_dir "$shards" --vocab_file "$vocab" --max_seq_length "$L" --num_shards 8 --overwrite
fi
run() { timeout -k 10 900 .venv/bin/python bench/peak_rss.py "$@" 2>/dev/null | grep '^{' >> "$out" \
        || echo "{\"error\": \"failed: $*\"}" >> "$out"; }
ours() { run .venv/bin/python bench/pretrain_step.py --batch $B --seq $L --steps $STEPS --peak "$@"; }
mg() { run "$peers/tfm/bin/python" "$shared/peers/tfm_step.py" --batch $B --seq $L --steps $STEPS "$@"; }
for r in $(seq "$rounds"); do
  echo "round $r" >&2
  ours --precision float32 --data "$shards/pretrain_data*" --vocab "$vocab"
  mg --precision float32
  ours --precision mixed_bfloat16 --data "$shards/pretrain_data*" --vocab "$vocab"
done
ours --precision float32
mg --precision mixed_bfloat16
run "$peers/torch/bin/python" "$shared/peers/hf_torch_step.py" --batch $B --seq $L --steps $STEPS
.venv/bin/python bench/summarize.py "$out" > bench/results/pretrain_step.md
cat bench/results/pretrain_step.md
