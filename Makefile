# The two commands of the README's quick start.
.PHONY: demo test
demo: ## Build the example plugins and show them reconcile sample objects.
	tests/demo.sh
test: ## Every test: lints, unit, runtime, conformance and control-plane tests.
	tests/run.sh
