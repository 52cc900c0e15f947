"""What several test rooms share: driving the CLI, tiny runs, fake data sets."""
