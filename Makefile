# The local stack contract (see README): run, stop, status, test.
STACK := deploy/local/stack.sh

.PHONY: run stop status test unit integration e2e faults lint bench
run:    ## prepare everything, start the stack and the four services, print the demo API key
	@$(STACK) run
stop:   ## stop every process the stack started
	@$(STACK) stop
status: ## name, pid, port and health of each process
	@$(STACK) status
test:   ## lint, policy check, start what the tests need, run every tier (faults last), stop what it started
	@$(STACK) test
unit:   ## the unit tier: no sockets, no stack (prepares the Python environment only), under a minute
	@$(STACK) test unit
integration: ## one real adapter per test against Kafka, PostgreSQL or SMTP (starts the stack if it is down)
	@$(STACK) test integration
e2e:    ## tests/e2e and tests/security through the stack's public surfaces (starts the stack if it is down)
	@$(STACK) test e2e
faults: ## tests/faults: kills and restarts the stack's components during a run (~6 min, and more under load)
	@$(STACK) test faults
bench:  ## end-to-end benchmark against its peers (QUICK=1 for small runs; bench/README.md); writes docs/benchmarks.md
	@deploy/local/python-env.sh && .mailstream/venv/bin/python bench/e2e.py $(if $(QUICK),--quick)
lint:
	@deploy/local/python-env.sh && .mailstream/venv/bin/ruff check .
