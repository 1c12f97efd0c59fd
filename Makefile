# The two commands a newcomer needs: `make run` and `make test`.
# Everything else here is what those two are made of.

GO ?= go
export CRM_LOG_FORMAT ?= text

.PHONY: run test generate check-generated vet build

## run: start the API on :8080 with the embedded database (data in ./data)
run:
	$(GO) run .

## test: vet, check that gen/ matches openapi.yaml, run every test with the race detector
test: vet check-generated
	$(GO) test -race -count=1 -timeout 15m ./...

## generate: regenerate gen/ from openapi.yaml
generate:
	$(GO) generate ./gen

## check-generated: fail if gen/ is not what openapi.yaml generates
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
