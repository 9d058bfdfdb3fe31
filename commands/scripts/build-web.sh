#!/bin/sh
# Demo build: prints its steps; harmless.
echo "checking out $1"
sleep 0.3
echo "compiling web ($1)"
echo "build of $1 done"
