#!/bin/sh
# Demo deploy: prints its steps; harmless.
echo "deploying web $2 to $1"
sleep 0.3
echo "web $2 is live on $1"
