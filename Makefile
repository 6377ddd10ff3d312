# The local stack contract (see README): run, stop, status, test.
STACK := deploy/local/stack.sh

.PHONY: run stop status test lint bench
run:    ## prepare everything, start the stack and the four services, print the demo API key
	@$(STACK) run
stop:   ## stop every process the stack started
	@$(STACK) stop
status: ## name, pid, port and health of each process
	@$(STACK) status
test:   ## lint, start what the tests need, run every test
	@$(STACK) test
bench:  ## end-to-end benchmark against its peers (QUICK=1 for small runs; bench/README.md); writes docs/benchmarks.md
	@deploy/local/python-env.sh && .mailstream/venv/bin/python bench/e2e.py $(if $(QUICK),--quick)
lint:
	@deploy/local/python-env.sh && .mailstream/venv/bin/ruff check .
