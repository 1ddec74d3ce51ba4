#!/bin/sh
# Demo step: archive a generation. Every third generation finds the archive busy on its
# first attempt (exit 9, tried again after the step's delay); every fifth one fails.
spool="$1" generation="$2"
n=$(expr "$generation" + 0)
attempt="${PORTAL_ATTEMPT:-1}"
if [ $((n % 3)) -eq 0 ] && [ "$attempt" -eq 1 ]; then
    echo "$spool/$generation: archive busy, trying again later"
    exit 9
fi
if [ $((n % 5)) -eq 0 ]; then
    echo "$spool/$generation: archive rejected the batch (checksum mismatch)" >&2
    exit 3
fi
sleep 2
echo "$spool/$generation: archived 1200 records"
