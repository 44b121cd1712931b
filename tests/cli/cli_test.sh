#!/usr/bin/env bash
# Command-line tests of the bnorm program. Usage: cli_test.sh <bnorm binary> <case>
#   errors   every kind of bad input gives exit code 1 and one line "bnorm: error: ...", and
#            leaves files that were already saved intact;
#   workflow train (a short run on Fashion-MNIST), eval, predict (IDX and PGM), summary, Ctrl-C,
#            resume; exit 77
#            (skipped) when Fashion-MNIST is not installed;
#   bench    `bnorm bench --quick` on one small shape: every implementation passes validation;
#            and with bnorm's streaming stores forced (--stores streaming)
#            (exit 0) and the JSON has the issue's keys, and two_pass_us where it applies.
#            Times are not checked (a smoke test, not a measurement).
set -uo pipefail
bnorm=$1
case_name=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fashion=/usr/share/datasets/fashion-mnist

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error <text that the message must contain> <command...>
expect_error() {
  local want=$1; shift
  "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  if [ $rc -ne 1 ]; then fail "$* -> exit $rc, expected 1 ($(head -c 300 "$work/err"))"; return; fi
  # One line; a spec error adds the spec with a caret under the position (two more lines).
  if [ "$(wc -l < "$work/err")" -gt 3 ]; then fail "$* -> expected one error line, got: $(cat "$work/err")"; return; fi
  head -1 "$work/err" | grep -q "^bnorm: error: " || fail "$*: message does not start with 'bnorm: error: ': $(cat "$work/err")"
  grep -qi "terminate\|abort\|stack\|segmentation" "$work/err" && fail "$*: crashed: $(cat "$work/err")"
  grep -qi -- "$want" "$work/err" || fail "$*: message lacks '$want': $(cat "$work/err")"
  echo "ok: $(cat "$work/err")"
}

tiny_model() {  # a small trained model file at $work/tiny/model.safetensors
  "$bnorm" train --model "flatten linear(16) bn relu linear(10)" --steps 3 --batch-size 32 --out "$work/tiny" \
    --threads 1 > /dev/null 2>&1 || { fail "training the tiny model failed"; return 1; }
}

case "$case_name" in
errors)
  expect_error "unknown layer" "$bnorm" summary --model "conv3x3(8) bnn relu flatten linear(10)"
  expect_error "1:12" "$bnorm" summary --model "conv3x3(8) bnn relu flatten linear(10)"
  expect_error "flatten" "$bnorm" summary --model "conv3x3(8) relu linear(10)"
  expect_error "0" "$bnorm" summary --model "conv3x3(0) relu flatten linear(10)"
  expect_error "one of automatic, cached, streaming" "$bnorm" bench --stores fast --list
  expect_error "no such file\|not found\|cannot\|missing" "$bnorm" eval --model "$work/missing.safetensors"
  if [ -d "$fashion" ]; then
    expect_error "batch" "$bnorm" train --model vgg-mini --batch-size 1 --steps 1 --out "$work/b1"
    expect_error "data\|folder\|found" "$bnorm" train --data "$work/nowhere" --steps 1 --out "$work/x"
    tiny_model && {
      cp "$work/tiny/model.safetensors" "$work/good.safetensors"
      size=$(stat -c %s "$work/good.safetensors")
      head -c $((size / 2)) "$work/good.safetensors" > "$work/truncated.safetensors"
      expect_error "truncated.safetensors" "$bnorm" eval --model "$work/truncated.safetensors"
      cp "$work/good.safetensors" "$work/flipped.safetensors"
      printf '\x55' | dd of="$work/flipped.safetensors" bs=1 seek=$((size - 10)) conv=notrunc 2> /dev/null
      expect_error "checksum\|crc" "$bnorm" eval --model "$work/flipped.safetensors"
      head -c 100 /dev/urandom > "$work/garbage.safetensors"
      expect_error "garbage.safetensors" "$bnorm" predict --model "$work/garbage.safetensors" --images "$fashion/t10k-images-idx3-ubyte.gz"
      head -c 5000 <(gzip -dc "$fashion/t10k-images-idx3-ubyte.gz") > "$work/short-images-idx3-ubyte"
      expect_error "short-images" "$bnorm" predict --model "$work/good.safetensors" --images "$work/short-images-idx3-ubyte"
      printf 'P5\n3 3\n255\n123456789' > "$work/small.pgm"
      expect_error "(1, 3, 3)\|3, 3" "$bnorm" predict --model "$work/good.safetensors" --images "$work/small.pgm"
      # A resume whose checkpoint belongs to another folder layout still names the file.
      expect_error "model.safetensors\|checkpoint" "$bnorm" train --resume "$work/good.safetensors"
      cmp -s "$work/tiny/model.safetensors" "$work/good.safetensors" || fail "a failed command changed a saved model"
    }
  else
    echo "Fashion-MNIST not installed ($fashion): data-dependent error cases not run"
  fi
  ;;
workflow)
  if [ ! -d "$fashion" ]; then echo "SKIP: Fashion-MNIST not installed ($fashion)"; exit 77; fi
  out="$work/run"
  "$bnorm" train --model mlp-paper --steps 60 --batch-size 60 --validation 1000 --out "$out" || fail "train"
  for f in model.safetensors checkpoint.safetensors steps.csv epochs.csv config.json; do
    [ -s "$out/$f" ] || fail "train did not write $f"
  done
  [ "$(wc -l < "$out/steps.csv")" -eq 61 ] || fail "steps.csv should have a header and 60 rows"
  "$bnorm" eval --model "$out/model.safetensors" --format json > "$work/eval.json" || fail "eval"
  /usr/bin/python3 - "$work/eval.json" <<'PY' || fail "eval json"
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r) == {"accuracy", "loss", "examples"}, r
assert r["examples"] == 10000 and 0.3 < r["accuracy"] <= 1, r
print("eval:", r)
PY
  "$bnorm" predict --model "$out/model.safetensors" --images "$fashion/t10k-images-idx3-ubyte.gz" --first 3 \
    --format json > "$work/predict.json" || fail "predict"
  /usr/bin/python3 - "$work/predict.json" <<'PY' || fail "predict json"
import json, math, sys
rows = json.load(open(sys.argv[1]))
assert [r["index"] for r in rows] == [0, 1, 2], rows
for r in rows:
    assert len(r["probabilities"]) == 10 and len(r["logits"]) == 10
    assert abs(sum(r["probabilities"]) - 1) < 1e-4
    assert r["class"] == max(range(10), key=lambda k: r["logits"][k])
print("predict:", [(r["class"], r["class_name"]) for r in rows])
PY
  "$bnorm" summary --model "$out/model.safetensors" > "$work/summary.txt" || fail "summary"
  grep -q "linear" "$work/summary.txt" || fail "summary lists no linear layer"
  # a single image: a 28x28 PGM made from the first test image
  /usr/bin/python3 - "$fashion/t10k-images-idx3-ubyte.gz" "$work/first.pgm" <<'PY' || fail "writing a PGM"
import gzip, sys
pixels = gzip.open(sys.argv[1]).read()[16:16 + 784]
open(sys.argv[2], "wb").write(b"P5\n28 28\n255\n" + pixels)
PY
  "$bnorm" predict --model "$out/model.safetensors" --images "$work/first.pgm" --format json > "$work/one.json" || fail "predict pgm"
  /usr/bin/python3 - "$work/one.json" "$work/predict.json" <<'PY' || fail "predict of the PGM differs from the IDX's first image"
import json, sys
one, idx = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(one) == 1 and one[0]["class"] == idx[0]["class"], (one, idx[0])
assert max(abs(a - b) for a, b in zip(one[0]["logits"], idx[0]["logits"])) < 1e-4
PY
  # Ctrl-C: a checkpoint, exit code 130 and a note on how to resume (the bitwise resume itself
  # is tested in tests/cpp/train/test_trainer.cpp)
  "$bnorm" train --model mlp-paper --epochs 50 --batch-size 60 --out "$work/interrupted" > "$work/int.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -s "$work/interrupted/steps.csv" ] && [ "$(wc -l < "$work/interrupted/steps.csv")" -gt 20 ] && break; sleep 0.1; done
  kill -INT $pid
  wait $pid
  rc=$?
  [ $rc -eq 130 ] || fail "Ctrl-C: exit $rc, expected 130 ($(tail -2 "$work/int.log"))"
  [ -s "$work/interrupted/checkpoint.safetensors" ] || fail "Ctrl-C: no checkpoint written"
  [ ! -e "$work/interrupted/model.safetensors" ] || fail "Ctrl-C: a final model was written for an unfinished run"
  grep -q "resume" "$work/int.log" || fail "Ctrl-C: the message does not say how to resume"
  # resume a finished run's checkpoint: nothing left to do, the same model comes out
  cp "$out/model.safetensors" "$work/first.safetensors"
  "$bnorm" train --resume "$out/checkpoint.safetensors" || fail "resume"
  cmp -s "$out/model.safetensors" "$work/first.safetensors" || fail "resuming a finished run changed the model"
  ;;
bench)
  "$bnorm" bench --quick --filter n8c512h7w7:nchw --format json > "$work/bench.json" 2> "$work/bench.err" \
    || fail "bench: exit $? ($(tail -3 "$work/bench.err"))"
  python3 - "$work/bench.json" <<'PY' || fail "bench: JSON"
import json, sys
rows = json.load(open(sys.argv[1]))
keys = ["shape", "layout", "op", "cache", "impl", "median_us", "sol_us"]
cases = {(r["op"], r["cache"]) for r in rows}
assert cases == {(op, c) for op in ("forward_train", "forward_infer", "backward")
                 for c in ("cold", "hot")}, cases
for r in rows:
    assert all(k in r for k in keys), r
    assert r["shape"] == "8x512x7x7" and r["layout"] == "nchw", r
    if r["impl"] == "bnorm":
        assert r["median_us"] > 0 and r["sol_us"] > 0, r
    assert ("two_pass_us" in r) == (r["op"] != "forward_infer"), r
    if "two_pass_us" in r:
        assert r["two_pass_us"] > 0, r
print("bench JSON ok:", len(rows), "rows")
PY
  # bnorm with streaming stores forced, on a shape whose rows stream (8x8 runs, C % 8 == 0):
  # validated against the reference like the default, and named in the report.
  for shape in n256c64h8w8:nchw n256c64h8w8:nhwc; do
    "$bnorm" bench --quick --filter "$shape" --stores streaming > "$work/bench-streaming.txt" 2> "$work/bench.err" \
      || fail "bench --stores streaming $shape: exit $? ($(tail -3 "$work/bench.err"))"
    grep -q "bnorm output stores: streaming" "$work/bench-streaming.txt" || fail "bench --stores: header"
    grep -q "stores=streaming" "$work/bench-streaming.txt" || fail "bench --stores: bnorm's kernel column"
  done
  ;;
*)
  echo "unknown case $case_name"; exit 2 ;;
esac
if [ $failures -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all passed"
