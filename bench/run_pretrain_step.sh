#!/usr/bin/env bash
# Runs ours and the peers alternately, ROUNDS times, for float32 and bfloat16, and appends
# one JSON line per run to bench/results/pretrain_step.jsonl; then summarizes (medians).
# Needs the peers' venvs: ../shared/peers/setup.sh.   Usage: bench/run_pretrain_step.sh [ROUNDS]
set -u
cd "$(dirname "$0")/.."
rounds=${1:-3}
peers=${PEERS_DIR:-$HOME/.cache/electra-peers}
shared=${SHARED_DIR:-../shared}
out=bench/results/pretrain_step.jsonl
B=${BATCH:-32}; L=${SEQ:-128}; STEPS=${STEPS:-5}
mkdir -p bench/results
run() { timeout -k 10 900 "$@" 2>/dev/null | grep '^{' >> "$out" || echo "{\"error\": \"failed: $*\"}" >> "$out"; }
for r in $(seq "$rounds"); do
  echo "round $r" >&2
  run .venv/bin/python bench/pretrain_step.py --batch $B --seq $L --steps $STEPS --precision float32 --peak
  run "$peers/tfm/bin/python" "$shared/peers/tfm_step.py" --batch $B --seq $L --steps $STEPS
  run "$peers/torch/bin/python" "$shared/peers/hf_torch_step.py" --batch $B --seq $L --steps $STEPS
  run .venv/bin/python bench/pretrain_step.py --batch $B --seq $L --steps $STEPS --precision mixed_bfloat16 --peak
  run "$peers/tfm/bin/python" "$shared/peers/tfm_step.py" --batch $B --seq $L --steps $STEPS --precision mixed_bfloat16
  run "$peers/torch/bin/python" "$shared/peers/hf_torch_step.py" --batch $B --seq $L --steps $STEPS --precision bfloat16
done
.venv/bin/python bench/summarize.py "$out" > bench/results/pretrain_step.md
cat bench/results/pretrain_step.md
