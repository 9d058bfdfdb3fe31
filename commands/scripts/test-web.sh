#!/bin/sh
# Demo tests: print what they test; fail when asked to ($2 = yes).
echo "testing $1"
sleep 0.3
if [ "$2" = "yes" ]; then
  echo "FAIL checkout_test: expected 200, got 500"
  echo "3 of 120 tests failed"
  exit 2
fi
echo "120 tests passed"
