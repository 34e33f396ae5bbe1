"""The eval harness: labelled cases, the run, the metrics, the gate, the wiring of replay."""
