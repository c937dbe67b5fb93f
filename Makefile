# The two commands of the README's quick start.
.PHONY: demo test
demo: ## Run the example plugins in kubewasm against a private control plane.
	tests/demo.sh
test: ## Every test: lints, unit, runtime, conformance and control-plane tests.
	tests/run.sh
