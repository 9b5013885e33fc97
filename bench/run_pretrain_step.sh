#!/usr/bin/env bash
# Full pretraining steps of ELECTRA-Small (B=32, L=128): ours (streaming TFRecord shards built
# from ../shared/data/corpus through the real input pipeline), TF Model Garden and transformers'
# PyTorch ELECTRA, alternating, ROUNDS times: float32 for all three, then mixed_bfloat16 for ours
# and bfloat16 autocast for transformers. Once each after the rounds: ours on an in-memory batch
# (the peers' workload) and Model Garden with mixed_bfloat16 (it fails: dtype error in its
# sampling). transformers' bfloat16 is skipped without bfloat16 matrix hardware (AVX-512 BF16 or
# AMX): it took 15+ minutes a run on an AVX2-only CPU.
# Starts bench/results/pretrain_step.jsonl (or $OUT) with a line for the machine (date, CPU,
# bfloat16 flags, both measured matmul peaks), appends one line per run (with peak RSS), then
# summarizes into the .md and .json beside it: medians, ratios to ours, share of the peak.
# Needs the peers' venvs: ../shared/peers/setup.sh.   Usage: bench/run_pretrain_step.sh [ROUNDS]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
peers=${PEERS_DIR:-$HOME/.cache/electra-peers}
shared=${SHARED_DIR:-../shared}
out=${OUT:-bench/results/pretrain_step.jsonl}
B=${BATCH:-32}; L=${SEQ:-128}; STEPS=${STEPS:-5}
vocab=$shared/data/vocab/corpus-wordpiece-30522.txt
shards=${SHARDS:-runs/electra-bench-shards}
mkdir -p bench/results
if [ ! -f "$shards/dataset_info.json" ]; then
  .venv/bin/python build_pretraining_dataset.py --input "$shared/data/corpus/web.txt" \
    --output_dir "$shards" --vocab_file "$vocab" --max_seq_length "$L" --num_shards 8 --overwrite
fi
.venv/bin/python bench/common.py > "$out"  # the machine and its peaks, first
run() { timeout -k 10 900 .venv/bin/python bench/peak_rss.py "$@" 2>/dev/null | grep '^{' >> "$out" \
        || echo "{\"error\": \"failed: $*\"}" >> "$out"; }
ours() { run .venv/bin/python bench/pretrain_step.py --batch $B --seq $L --steps $STEPS "$@"; }
mg() { run "$peers/tfm/bin/python" "$shared/peers/tfm_step.py" --batch $B --seq $L --steps $STEPS "$@"; }
hf() { run "$peers/torch/bin/python" "$shared/peers/hf_torch_step.py" --batch $B --seq $L --steps $STEPS "$@"; }
bf16_hw=$(grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo yes || echo no)
for r in $(seq "$rounds"); do
  echo "round $r" >&2
  ours --precision float32 --data "$shards/pretrain_data*" --vocab "$vocab"
  mg --precision float32
  hf --precision float32
  ours --precision mixed_bfloat16 --data "$shards/pretrain_data*" --vocab "$vocab"
  if [ "$bf16_hw" = yes ]; then hf --precision bfloat16; fi
done
ours --precision float32
mg --precision mixed_bfloat16
.venv/bin/python bench/summarize.py "$out" > "${out%.jsonl}.md"
cat "${out%.jsonl}.md"
