#!/bin/bash
# A lent GPU's whole session in one device call: the device check, then training for the time
# left (examples/gpu_train.py, in bf16 only where the check found that bf16 learns as fp32).
#
#   bash benchmarks/device_session.sh SECONDS [DEVICE_CHECK_ARGS...]
#
# Run from the repository root on the lent machine, with these carried (see benchmarks/README):
# .whl (the av wheel, pytest and its needs) and .gpu/data (day/ and night/ training folders,
# as examples/prepare_shared_data.py writes train/). Writes gpu.txt, dc.log, dc/results.{json,md},
# train.log and the two exports to $OUT. DRY=1 rehearses it on a CPU (tiny sizes).
set -o pipefail
total=${1:?usage: device_session.sh SECONDS [device_check args]}
shift
case $total in '' | *[!0-9]*) echo "SECONDS must be a whole number, not '$total'"; exit 2 ;; esac
[ "$total" -ge 200 ] || { echo "SECONDS must be at least 200"; exit 2; }
start=$(date +%s)
out=${OUT:?set OUT to the folder the results go to}
rm -rf "$out/dc"  # never read an earlier call's results
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 GPU_RUN=${GPU_RUN:-$(mktemp -u -d /tmp/gpu_run.XXXXXX)}
# 96-frame clips in bf16 alone (fp32 and compiled rows fit a longer call: pass --modes ...);
# a dry run keeps device_check's own tiny sizes (bf16 is emulated on a CPU: 96 frames of it
# overran the rehearsal's share and it never reached the training)
dry=(); cpu=(); sizes=(--frames 96 --modes bf16)
[ -n "$DRY" ] && dry=(--dry-run) && cpu=(--cpu) && sizes=()
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "no nvidia-smi"
} > "$out/gpu.txt" 2>&1
share=$((total * 55 / 100))
timeout "$share" python3 benchmarks/device_check.py --out "$out/dc" --budget-s $((share - 90)) \
  "${sizes[@]}" "${dry[@]}" "$@" 2>&1 | tee "$out/dc.log"
status=$?
precision=$(python3 - "$out/dc/results.json" <<'PY' 2>/dev/null || echo fp32
import json, sys
rows = json.load(open(sys.argv[1]))["checks"]
ok = [r.get("bf16 learns as fp32") for r in rows if r["check"] == "training learns in bf16"]
print("bf16" if ok == [True] else "fp32")
PY
)
left=$((total - ($(date +%s) - start) - 15))
echo "device check done; training in $precision for about $left s" | tee "$out/train.log"
if [ -d .gpu/data ] && [ "$left" -gt 90 ]; then
  timeout "$left" python3 examples/gpu_train.py .gpu/data "$out" $((left - 10)) \
    --precision "$precision" "${cpu[@]}" 2>&1 | tee -a "$out/train.log"
  status=$((status || $?))
else
  echo "no training: .gpu/data missing or under 90 s left" | tee -a "$out/train.log"
fi
exit "$status"
