"""Pure domain logic: AMI events, calls and the rules; no I/O, times are passed in."""
