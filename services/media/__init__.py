"""Pure media processing: decoding and re-encoding what users upload. No I/O."""
