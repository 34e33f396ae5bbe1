"""The nightly batch: scan a notes folder, plan what is due, run it, keep state, write outputs."""
