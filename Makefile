# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is what those two are made of.

GO ?= go
NODE ?= node
NPM ?= npm
export CRM_LOG_FORMAT ?= text
# The Node tools never phone home (the machine may have no network at all).
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true
export NO_UPDATE_NOTIFIER := 1

# The pinned Node tools (gen/tools/package-lock.json), installed by `make tools`;
# npm writes this file last, so it is as new as the installation.
TOOLS := gen/tools/node_modules/.package-lock.json

.PHONY: run test bench generate check-generated vet build tools lint sdk postman screenshot

## run: start the API on :8080 with the embedded database (data in ./data)
run:
	$(GO) run .

## test: vet, check that gen/ matches openapi.yaml, run every test with the race detector
## (the lint, SDK, Postman and Swagger UI tests need `make tools` and chromium; without
## them they print SKIP, and under CI=true they fail)
# One package at a time (-p 1): the integration suite's second run on PostgreSQL
# and the concurrency tests need the machine's two cores more than they need to
# overlap with other packages.
test: vet check-generated
	$(GO) test -race -count=1 -p 1 -timeout 18m ./...

## bench: the performance table (each operation at the store, through the API in-process and
## over loopback HTTP, at 1,000 and 10,000 customers; the API layer alone, concurrent load,
## start-up, password hashing); CRM_BENCH_SIZES=1000,10000,100000 adds 100,000
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s -timeout 60m ./server ./server/cli ./api/auth

## generate: regenerate gen/ from openapi.yaml: the Go code, and with Node the
## TypeScript SDK (gen/typescript) and the Postman collection (gen/postman)
generate:
	$(GO) generate ./gen
	@if command -v $(NODE) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory sdk postman; \
	else \
		echo "node not found: gen/typescript and gen/postman were not regenerated (install Node.js 20+, then make sdk postman)"; \
	fi

## check-generated: fail if gen/ is not what openapi.yaml generates
## (the Go code here; the TypeScript SDK and the Postman collection are checked by
## TestTypeScriptSDK and TestPostmanCollection in server/, which need node)
check-generated:
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	cmp -s openapi.yaml gen/openapi.yaml || { echo "gen/openapi.yaml differs from openapi.yaml: run make generate"; exit 1; }; \
	for part in types server client; do \
		$(GO) tool oapi-codegen -config gen/codegen-$$part.yaml -o $$tmp/$$part.gen.go openapi.yaml || exit 1; \
		cmp -s $$tmp/$$part.gen.go gen/$$part.gen.go || { echo "gen/$$part.gen.go is stale: run make generate and commit gen/"; exit 1; }; \
	done; \
	echo "gen/ is up to date with openapi.yaml"

vet:
	$(GO) vet ./...

build:
	$(GO) build -o crm .

## tools: install the pinned Node tools into gen/tools/node_modules (npm ci), when npm is there
tools:
	@if command -v $(NPM) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory $(TOOLS); \
	else \
		echo "npm not found: the Node tools were not installed (install Node.js 20+ and npm, then make tools)"; \
	fi

$(TOOLS): gen/tools/package.json gen/tools/package-lock.json
	@command -v $(NPM) >/dev/null 2>&1 || { echo "npm not found: install Node.js 20+ and npm, then run make tools"; exit 1; }
	$(NPM) ci --prefix gen/tools --no-audit --no-fund
	@touch $@

## lint: lint openapi.yaml with @redocly/cli (recommended rules, strict; gen/tools/redocly.yaml)
lint: $(TOOLS)
	$(NODE) gen/tools/node_modules/@redocly/cli/bin/cli.js lint --config gen/tools/redocly.yaml openapi.yaml

## sdk: generate the TypeScript SDK into gen/typescript (openapi-typescript + openapi-fetch)
sdk: $(TOOLS)
	$(NODE) gen/tools/sdk.mjs openapi.yaml gen/typescript

## postman: generate the Postman collection and environment into gen/postman (openapi-to-postmanv2)
postman: $(TOOLS)
	$(NODE) gen/tools/postman.mjs openapi.yaml gen/postman

## screenshot: refresh gen/docs/swagger-ui.png, the README's picture of Swagger UI (needs chromium)
screenshot:
	$(GO) test -count=1 -run '^TestSwaggerUI$$' ./server -args -screenshot=$(CURDIR)/gen/docs/swagger-ui.png
