#!/bin/sh
# Demo step: wait for a generation's input files. Exit 9 means "not there yet, try later".
spool="$1" generation="$2"
attempt="${PORTAL_ATTEMPT:-1}"
if [ "$attempt" -lt 3 ]; then
    echo "$spool/$generation: input files not complete yet (attempt $attempt)"
    exit 9
fi
echo "$spool/$generation: 3 input files found, 1200 records"
