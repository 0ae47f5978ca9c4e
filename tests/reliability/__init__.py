"""The reliability suite (marker `reliability`): bad definitions, bad data, crashes, concurrent
runs and hostile input, each shown to end in a clear error with nothing lost. docs/reliability.md
counts what is tried and names the test that covers each case."""
