package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	oapimiddleware "github.com/oapi-codegen/echo-middleware"

	"github.com/opencrm/crm/api"
)

// TestQuickCheckAcceptsOnlyWhatKinOpenAPIAccepts sends every operation that
// has a quick check a corpus of path values, header values, query strings and
// tokens, and asks both: whatever the quick check accepts, kin-openapi's
// validation accepts too (what it does not accept goes to kin-openapi, so
// every refusal is kin-openapi's). It also proves the quick check is not a
// dead path: the valid requests of each such operation do take it.
func TestQuickCheckAcceptsOnlyWhatKinOpenAPIAccepts(t *testing.T) {
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	const goodToken = "good"
	authenticate := func(ctx context.Context, token string) (context.Context, error) {
		if token != goodToken {
			return nil, api.ErrUnauthenticated
		}
		return ctx, nil
	}
	options := validationOptions(authenticate)
	const validID = "6553f1a2c8e4b2a1d0f00002"
	pathValues := []string{validID, strings.ToUpper(validID), validID[1:], validID + "0", "me", "", " " + validID[1:],
		"6553f1a2c8e4b2a1d0f0000\u00e9", "6553f1a2c8e4b2a1d0f0000\n", "%zz"}
	headerValues := []string{"", `"3"`, `W/"3"`, "*", `"a", "b"`, strings.Repeat("x", 100), strings.Repeat("x", 101),
		strings.Repeat("é", 100), strings.Repeat("é", 51), "\u00a0"}
	authorizations := []string{"", "Bearer " + goodToken, "Bearer other", "Basic " + goodToken, "bearer " + goodToken}
	queries := []string{"", "limit=5", "limit=0", "sort=nonsense"}

	e := echo.New()
	var quick []string
	for rt, info := range indexOperations(spec) {
		if info.quick == nil {
			continue
		}
		quick = append(quick, rt.String())
		var pathNames, headerNames []string
		for _, p := range info.quick.params {
			if p.In == "path" {
				pathNames = append(pathNames, p.Name)
			} else {
				headerNames = append(headerNames, p.Name)
			}
		}
		tookQuickPath := false
		// Every path value in each path parameter, every header value in
		// each header, one at a time against otherwise valid requests.
		type variant struct {
			path, header, query, authorization, body string
			emptyHeader                              bool // a header line with no value
		}
		var variants []variant
		for _, v := range pathValues {
			for _, a := range authorizations {
				for _, q := range queries {
					variants = append(variants, variant{path: v, query: q, authorization: a})
				}
			}
		}
		for _, h := range headerValues {
			for _, a := range authorizations {
				variants = append(variants, variant{path: validID, header: h, authorization: a, emptyHeader: h == ""})
			}
		}
		// A body, which kin-openapi reads (and refuses past the size limit)
		// even where the operation takes none.
		variants = append(variants, variant{path: validID, authorization: "Bearer " + goodToken, body: strings.Repeat("x", 2<<20)})
		for _, v := range variants {
			req := httptest.NewRequest(rt.method, "/?"+v.query, http.NoBody)
			if v.authorization != "" {
				req.Header.Set(echo.HeaderAuthorization, v.authorization)
			}
			for _, name := range headerNames {
				if v.header != "" || v.emptyHeader {
					req.Header[name] = []string{v.header}
				}
			}
			if v.body != "" {
				req.Body = io.NopCloser(strings.NewReader(v.body))
			}
			params := map[string]string{}
			for _, name := range pathNames {
				params[name] = v.path
			}
			c := e.NewContext(req, httptest.NewRecorder())
			accepted := info.quick.accepts(c, params, authenticate)
			// kin-openapi on a fresh context: the quick check may have
			// remembered a failed token, as the validator's would.
			kin := oapimiddleware.ValidateRequestFromContext(e.NewContext(req, httptest.NewRecorder()), routedBy{info, params}, options)
			if accepted && v.body != "" {
				// Past the body limit, in the server, kin-openapi's read of it fails.
				t.Errorf("%s: the quick check accepts a request with a body", rt)
			}
			if accepted && kin != nil {
				t.Errorf("%s with %+v: the quick check accepts what kin-openapi refuses: %v", rt, v, kin.Internal)
			}
			tookQuickPath = tookQuickPath || accepted
		}
		if !tookQuickPath {
			t.Errorf("%s: the quick check accepted none of its valid requests", rt)
		}
	}
	// The operations it serves, and none that take a body, a list or an
	// optional token.
	slices.Sort(quick)
	for _, want := range []string{"GET /customers/:id", "DELETE /customers/:id", "GET /interactions/:id", "GET /users/me", "GET /users/:id", "GET /customers"} {
		if !slices.Contains(quick, want) {
			t.Errorf("%s has no quick check; those that do: %v", want, quick)
		}
	}
	for _, unwanted := range []string{"POST /customers", "PATCH /customers/:id", "POST /users", "POST /users/login", "POST /auth/token"} {
		if slices.Contains(quick, unwanted) {
			t.Errorf("%s has a quick check", unwanted)
		}
	}
	t.Logf("quick checks: %v", quick)
}
