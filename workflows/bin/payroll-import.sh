#!/bin/sh
# Demo step: the import of a payroll file whose checksum does not match (return code 3: Error).
spool="$1" generation="$2"
echo "$spool/$generation: reading PAYROLL_$generation.csv (1204 lines)"
echo "$spool/$generation: checksum mismatch: expected 9f2c41d7, got 03ab77e1; the file was cut short in transfer" >&2
echo "$spool/$generation: ask the sender to resend it, then reset this job" >&2
exit 3
