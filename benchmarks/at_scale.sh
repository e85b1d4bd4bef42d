#!/usr/bin/env bash
# The from-scratch runs of the README's "From scratch, with spread" table, in two lanes (one core each), resumable.
#
#   benchmarks/at_scale.sh MINUTES        # run for at most MINUTES, then stop (every run resumes next time)
#
# Each job is `brf-train TASK --framework F --neuron N --seed S --threads 1 --time-limit LEFT
# [--stop-after-epochs N] [--resume]` into
# $RUNS/TASK-F-N-seedS: a finished run (summary.json) is skipped, a stopped one continues from its last.pt, and no
# job starts with under 3 minutes left. Afterwards, `python benchmarks/results_table.py $RUNS/* --store
# benchmarks/results/at_scale/run_files --readme README.md` collects the results, the unfinished runs' last.pt
# included, so a fresh checkout can resume them. On a fresh checkout, start
# from what is committed: `mkdir -p runs/at_scale && cp -r benchmarks/results/at_scale/run_files/* runs/at_scale/`.
# Environment: RUNS (default runs/at_scale), DATA (default ../shared/data), PYTHON (default .venv/bin/python).
set -u
cd "$(dirname "$0")/.."
MINUTES=${1:?usage: benchmarks/at_scale.sh MINUTES}
RUNS=${RUNS:-runs/at_scale}
DATA=${DATA:-../shared/data}
PY=${PYTHON:-.venv/bin/python}
DEADLINE=$(( $(date +%s) + 60 * MINUTES ))
mkdir -p "$RUNS"

# Seeds differ between the frameworks: one seed gives identical runs in both (the same weights and spikes).
# A fifth field N is a first pass: every job is first trained to N epochs (`--stop-after-epochs N`, the recipe's
# schedule unchanged), and both lanes finish their first pass before either starts the second, so each long run
# reaches its first N epochs before any of them runs on; the second pass continues them to the recipe's end.
LANE_A=("ecg snntorch brf 0" "ecg snntorch brf 1" "ecg snntorch brf 2" "ecg snntorch brf 3" "ecg snntorch brf 4"
        "ecg norse brf 5" "ecg norse brf 6" "ecg norse brf 7" "ecg norse brf 8" "ecg norse brf 9"
        "ecg snntorch rf 0" "ecg norse alif 0" "ecg snntorch rf 1" "ecg norse alif 1" "ecg snntorch rf 2"
        "ecg norse alif 2" "ecg snntorch bhrf 0" "ecg snntorch bhrf 1" "ecg snntorch bhrf 2"
        "ecg norse alif 3" "ecg norse alif 4"
        "psmnist norse brf 1 10" "smnist snntorch alif 0 10" "psmnist snntorch alif 0 10")
LANE_B=("smnist snntorch brf 0 10" "smnist norse brf 1 10" "psmnist snntorch brf 0 10")

# the epochs a stopped run has trained (its summary's last row is evaluated only), 0 without one
trained() {
    [ -f "$1/summary.json" ] || { echo 0; return; }
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("final_epoch", 0))' "$1/summary.json"
}

# a finished run: a summary.json of a run that was not stopped early
finished() {
    [ -f "$1/summary.json" ] && "$PY" -c 'import json, sys; sys.exit(bool(json.load(open(sys.argv[1]))["stopped_early"]))' "$1/summary.json"
}

lane() {
    local name=$1 pass=$2; shift 2
    for job in "$@"; do
        read -r task fw neuron seed first <<< "$job"
        local out="$RUNS/$task-$fw-$neuron-seed$seed"
        finished "$out" && continue
        local stop=""
        if [ "$pass" = 1 ] && [ -n "${first:-}" ]; then
            [ "$(trained "$out")" -ge "$first" ] && continue
            stop="--stop-after-epochs $first"
        fi
        local left=$(( (DEADLINE - $(date +%s)) / 60 ))
        [ "$left" -lt 3 ] && { echo "$(date +%T) $name: time is up"; return; }
        local resume=""
        [ -f "$out/last.pt" ] && resume="--resume"
        echo "$(date +%T) $name (pass $pass): $out $resume $stop (at most $left min)"
        "$PY" -m brf_plugins.train "$task" --framework "$fw" --neuron "$neuron" --seed "$seed" --data-root "$DATA" \
            --threads 1 --out-dir "$out" --no-progress --time-limit "$left" $stop $resume >> "$out.log" 2>&1
        local rc=$?
        echo "$(date +%T) $name: $out exit $rc"
    done
}

lane A 1 "${LANE_A[@]}" &
lane B 1 "${LANE_B[@]}" &
wait
lane A 2 "${LANE_A[@]}" &
lane B 2 "${LANE_B[@]}" &
wait
