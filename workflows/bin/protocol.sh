#!/bin/sh
# Demo step: write a line to the generation's protocol.
spool="$1" generation="$2" what="${3:-protocolled}"
sleep 1
echo "$spool/$generation: $what at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
