#!/usr/bin/env bash
# The whole validation chain through the `virnucpro` command, on the bundled
# smoke data with tiny random-weight stand-ins (CPU, a couple of minutes):
#   preprocess -> extract x3 -> merge -> split -> train x2 -> evaluate x2 -> compare
# Usage: tools/cli_chain.sh OUT_DIR [SEED] [VIRAL.fasta HOST.fasta]
# The accuracy it prints validates the machinery, not FastESM2 (random weights).
set -euo pipefail
out=${1:?usage: tools/cli_chain.sh OUT_DIR [SEED] [VIRAL.fasta HOST.fasta]}
seed=${2:-42}
here=$(cd "$(dirname "$0")/.." && pwd)
viral=${3:-$here/fixtures/smoke/viral.fasta}
host=${4:-$here/fixtures/smoke/host.fasta}
# The command: $VIRNUCPRO, else `virnucpro` on PATH, else the one `make install` put in .venv.
if [ -n "${VIRNUCPRO:-}" ]; then vnp=$VIRNUCPRO
elif command -v virnucpro >/dev/null 2>&1; then vnp=virnucpro
elif [ -x "$here/.venv/bin/virnucpro" ]; then vnp=$here/.venv/bin/virnucpro
else
  echo "error: no virnucpro command: not on PATH and no $here/.venv/bin/virnucpro." \
    "Run 'make install' (or activate the environment that has it, or set VIRNUCPRO=/path/to/virnucpro)." >&2
  exit 127
fi
stand_in=(--weights random --size tiny --seed "$seed")
# On failure, take away the empty directories this run made (a full one keeps what finished, for reading).
made_out=0; [ -e "$out" ] || made_out=1
cleanup() {
  status=$?
  if [ "$status" -ne 0 ] && [ -d "$out" ]; then
    find "$out" -mindepth 1 -depth -type d -empty -delete 2>/dev/null || true
    [ "$made_out" = 1 ] && rmdir "$out" 2>/dev/null || true
  fi
  return "$status"
}
trap cleanup EXIT
echo "cli_chain: $vnp, seed $seed, into $out"
mkdir -p "$out"

for label in viral host; do
  input=$viral; [ "$label" = host ] && input=$host
  "$vnp" preprocess "$input" --chunk-size 300 --out "$out/pp/$label"
  "$vnp" extract --model dnabert_s "${stand_in[@]}" "$out/pp/$label/nucleotide.fa" --out "$out/features/dna-$label.pt"
  for model in fastesm2_650 esm2_3b; do
    "$vnp" extract --model "$model" "${stand_in[@]}" "$out/pp/$label/protein.faa" --out "$out/features/$model-$label.pt"
    "$vnp" merge "$out/features/dna-$label.pt" "$out/features/$model-$label.pt" --label "$label" \
      --out "$out/merged/$model-$label.pt"
  done
done

"$vnp" split --viral "$out/merged/fastesm2_650-viral.pt" --host "$out/merged/fastesm2_650-host.pt" \
  --seed "$seed" --out "$out/split/fastesm2_650"
"$vnp" split --manifest "$out/split/fastesm2_650/manifest.json" \
  --viral "$out/merged/esm2_3b-viral.pt" --host "$out/merged/esm2_3b-host.pt" --out "$out/split/esm2_3b"

for model in fastesm2_650 esm2_3b; do
  "$vnp" train --features "$out/split/$model" --out "$out/models/$model.pt" --seed "$seed"
  "$vnp" evaluate --model "$out/models/$model.pt" --features "$out/split/$model/test.pt" \
    --out "$out/predictions/$model.json" --metrics-out "$out/predictions/$model.metrics.json" --seed "$seed"
done

"$vnp" compare --fast "$out/predictions/fastesm2_650.json" --baseline "$out/predictions/esm2_3b.json" \
  --fast-history "$out/models/fastesm2_650.history.json" --baseline-history "$out/models/esm2_3b.history.json" \
  --split-summary "$out/split/fastesm2_650/distribution.json" --seed "$seed" --out "$out/comparison"
