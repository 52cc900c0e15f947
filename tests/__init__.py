"""The test suite: one folder per room of the house (docs/house.md), tiny configs in conf/."""
