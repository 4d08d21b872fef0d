"""What the test tiers share: constants, the leak watch, counting what a
request costs, published test vectors, and launching real processes."""
