#!/bin/sh
# A short Fashion-MNIST run must learn, and the same run twice must give the
# same weight bytes: 4,000 training samples (int8, batch size 1), evaluated on
# 2,000 test images. Chance is 10 %; the bound below is far above it.
# usage: learn_test.sh path/to/tinyrig-train
set -eu
TRAIN=$1
ARGS="train --model cnn --seed 3 --epochs 1 --train-count 4000 --test-count 2000 --lr 0.02 --qas --stochastic --json"

field() { # field NAME JSON -> number or string value of "NAME"
    printf '%s\n' "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" | head -n 1
}

run1=$($TRAIN $ARGS)
run2=$($TRAIN $ARGS)
acc=$(field test_accuracy "$run1")
first=$(field train_loss_first "$run1")
last=$(field train_loss_last "$run1")
sha1=$(field sha256_weights "$run1")
sha2=$(field sha256_weights "$run2")
echo "learn_test: accuracy $acc, train loss $first -> $last, weights $sha1"

fail=0
awk -v a="$acc" 'BEGIN { exit !(a >= 0.65) }' || { echo "FAIL: accuracy $acc < 0.65"; fail=1; }
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f * 0.8) }' ||
    { echo "FAIL: loss did not decrease ($first -> $last)"; fail=1; }
[ -n "$sha1" ] && [ "$sha1" = "$sha2" ] || { echo "FAIL: two runs differ ($sha1 / $sha2)"; fail=1; }
exit $fail
