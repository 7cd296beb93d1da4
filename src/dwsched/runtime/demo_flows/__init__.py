"""FlowSpec files of the demo workflows."""
