package server

import (
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// quickCheck validates the requests of an operation whose only inputs are
// text in the path or in headers and the bearer token: GET, DELETE
// /customers/{id}, GET /users/me, a list asked for without a query. It costs
// a fraction of kin-openapi's request validation, whose work per request (an
// input, an options value, a decoder per parameter, the security
// alternatives, the error lists) was a quarter of the API's CPU time in a
// lookup by id (a CPU profile of BenchmarkGetCustomer; see the README's
// Performance section).
//
// It only ever lets a request through: each value is checked by its
// parameter's own schema with kin-openapi's own validator, as kin-openapi
// would check it, and the token by the same authentication. A request it does
// not accept (a value missing, empty or invalid, a query string, a token that
// fails) goes to kin-openapi, whose answer stands. So it accepts nothing that
// kin-openapi would refuse, and every refusal reads as it did
// (TestQuickCheckAcceptsOnlyWhatKinOpenAPIAccepts).
type quickCheck struct {
	params []*openapi3.Parameter // in the path or a header, each a plain string
	// authenticated: the operation needs the bearer token (every security
	// alternative it lists is a scheme that the token satisfies).
	authenticated bool
}

// newQuickCheck returns the quick check of an operation, or nil when the
// operation takes a body, a parameter that is not a plain string in the path
// or a header (a query parameter that the request must give, a number, a
// list), or a security alternative other than the token.
func newQuickCheck(spec *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation) *quickCheck {
	if op.RequestBody != nil || spec.IsOpenAPI31OrLater() {
		return nil
	}
	q := &quickCheck{}
	for _, params := range []openapi3.Parameters{item.Parameters, op.Parameters} {
		for _, ref := range params {
			p := ref.Value
			switch {
			case p.In == openapi3.ParameterInQuery && !p.Required:
				// Checked only when the request has a query, which goes to
				// kin-openapi.
			case (p.In == openapi3.ParameterInPath || p.In == openapi3.ParameterInHeader) && plainString(p):
				if other := op.Parameters.GetByInAndName(p.In, p.Name); other != nil && other != p {
					continue // overridden by the operation's own
				}
				q.params = append(q.params, p)
			default:
				return nil
			}
		}
	}
	security := op.Security
	if security == nil {
		security = &spec.Security
	}
	for _, requirement := range *security {
		if len(requirement) == 0 {
			return nil // the token is optional
		}
		for name := range requirement {
			scheme := spec.Components.SecuritySchemes[name]
			if scheme == nil || !tokenScheme(scheme.Value) {
				return nil
			}
		}
		q.authenticated = true
	}
	return q
}

// plainString: a parameter read as the text it is sent as (a string in the
// simple style, no default, no content type, no composed schema, which
// kin-openapi decodes otherwise), which its schema checks as is.
func plainString(p *openapi3.Parameter) bool {
	if p.Content != nil || p.Schema == nil || p.Schema.Value == nil {
		return false
	}
	s := p.Schema.Value
	return s.Type.Is(openapi3.TypeString) && s.Default == nil && s.AllOf == nil && s.AnyOf == nil && s.OneOf == nil && s.Not == nil &&
		(p.Style == "" || p.Style == openapi3.SerializationSimple) && !p.AllowEmptyValue
}

// tokenScheme: a security scheme that the bearer token satisfies, checked by
// the validator's AuthenticationFunc whichever of them kin-openapi asks about.
func tokenScheme(s *openapi3.SecurityScheme) bool {
	return s != nil && (s.Type == "oauth2" || s.Type == "http" && s.Scheme == "bearer")
}

// accepts reports whether the request is valid, the path parameters given
// unescaped as the validator hands them to kin-openapi; false means "ask
// kin-openapi", not "invalid". A token that fails is remembered (see
// authenticateOnce), so that kin-openapi's check does not verify it again.
func (q *quickCheck) accepts(c echo.Context, pathParams map[string]string, authenticate authenticator) bool {
	r := c.Request()
	// A body, even on an operation that takes none, is read by kin-openapi
	// (and refused if too large); a query has its own parameters.
	if r.URL.RawQuery != "" || (r.Body != nil && r.Body != http.NoBody) {
		return false
	}
	for _, p := range q.params {
		var values []string
		if p.In == openapi3.ParameterInPath {
			if v, ok := pathParams[p.Name]; ok {
				values = []string{v}
			}
		} else {
			values = r.Header[http.CanonicalHeaderKey(p.Name)]
		}
		switch {
		case len(values) == 0 && !p.Required:
			continue // absent
		case len(values) == 0 || values[0] == "":
			return false // missing, or sent empty: kin-openapi decides
		case p.Schema.Value.VisitJSON(values[0], openapi3.MultiErrors()) != nil:
			return false
		}
	}
	return !q.authenticated || authenticateOnce(c, authenticate) == nil
}
