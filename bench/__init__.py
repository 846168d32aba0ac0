"""`make bench`: Yilian's throughput and latency, each figure next to a ceiling measured in the
same run on the same machine (see bench/README.md)."""
