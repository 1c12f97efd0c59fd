package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	oapimiddleware "github.com/oapi-codegen/echo-middleware"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/gen"
)

// operations indexes the spec's operations by Echo route, for the validator
// and for the checks that kin-openapi does not make (unknown and repeated
// query parameters), and to keep the validator off the routes the spec does
// not describe (/docs, /metrics, …).
type operations map[route]*operationInfo

// route is a method and an Echo path: GET /users/:id.
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

type operationInfo struct {
	// route is the operation in the spec, for the validator.
	route *routers.Route
	// query maps each query parameter the operation declares to whether it may
	// be repeated (an array parameter).
	query map[string]bool
	// idempotent: the operation accepts an Idempotency-Key header.
	idempotent bool
	// headers are the request headers the operation reads, by canonical name.
	headers []string
	// shadows are the paths that Echo may wrongly route here (see shadowsOf).
	shadows []shadow
	// quick validates the operation's simplest requests, or is nil (see quickCheck).
	quick *quickCheck
}

// shadow is a path of the spec with a fixed segment where an operation's path
// has a parameter (/users/me beside /users/{id}), and the methods it allows.
type shadow struct {
	prefix   string   // the path up to its first parameter: "/users/me", "/interactions/customer/"
	segments []string // "{…}" for a parameter
	allow    string   // as Echo writes Allow: "OPTIONS, GET, PATCH"
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// echoRoute turns an OpenAPI path template into Echo's form: /users/{id} → /users/:id.
func echoRoute(method, path string) route {
	return route{method, pathParam.ReplaceAllString(path, ":$1")}
}

func indexOperations(spec *openapi3.T) operations {
	ops := operations{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			info := &operationInfo{
				route: &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op},
				query: map[string]bool{},
			}
			for _, params := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, ref := range params {
					p := ref.Value
					switch {
					case p.In == openapi3.ParameterInQuery:
						info.query[p.Name] = p.Schema != nil && p.Schema.Value.Type.Is(openapi3.TypeArray)
					case p.In == openapi3.ParameterInHeader:
						info.headers = append(info.headers, http.CanonicalHeaderKey(p.Name))
						info.idempotent = info.idempotent || p.Name == idempotencyHeader
					}
				}
			}
			if op.Security == nil || len(*op.Security) > 0 {
				info.headers = append(info.headers, echo.HeaderAuthorization)
			}
			info.shadows = shadowsOf(spec, path)
			info.quick = newQuickCheck(spec, item, op)
			ops[echoRoute(method, path)] = info
		}
	}
	return ops
}

// shadowsOf lists the paths of the spec that a request may name and still be
// routed to path. Echo prefers a fixed segment to a parameter, but when the
// fixed path lacks the request's method it tries the parameter instead:
// DELETE /users/me reaches DELETE /users/{id} with the id "me", and would be
// refused for its id rather than with 405 and the methods /users/me allows.
func shadowsOf(spec *openapi3.T, path string) []shadow {
	own := strings.Split(path, "/")
	first := slices.IndexFunc(own, isParam)
	if first < 0 {
		return nil
	}
	var shadows []shadow
	for other, item := range spec.Paths.Map() {
		segments := strings.Split(other, "/")
		// Alike up to path's first parameter, where other has a fixed segment.
		if len(segments) > first && !isParam(segments[first]) && slices.Equal(own[:first], segments[:first]) {
			prefix, _, _ := strings.Cut(other, "{")
			methods := slices.Sorted(maps.Keys(item.Operations()))
			shadows = append(shadows, shadow{prefix, segments, strings.Join(append([]string{http.MethodOptions}, methods...), ", ")})
		}
	}
	return shadows
}

func isParam(segment string) bool { return strings.HasPrefix(segment, "{") }

// names reports whether a request path is the shadow's path.
func (sh shadow) names(requestPath string) bool {
	if !strings.HasPrefix(requestPath, sh.prefix) {
		return false // most requests, with an id where the shadow is fixed
	}
	segments := strings.Split(requestPath, "/")
	if len(segments) != len(sh.segments) {
		return false
	}
	for i, s := range segments {
		if s != sh.segments[i] && (s == "" || !isParam(sh.segments[i])) {
			return false
		}
	}
	return true
}

// shadowedBy returns what the path of the spec that the request names
// allows, when that is not the operation's own path (see shadowsOf).
func (info *operationInfo) shadowedBy(requestPath string) (allow string, shadowed bool) {
	for _, sh := range info.shadows {
		if sh.names(requestPath) {
			return sh.allow, true
		}
	}
	return "", false
}

// lookup returns the operation Echo routed the request to, or nil for routes
// outside the spec.
func (ops operations) lookup(c echo.Context) *operationInfo {
	return ops[route{c.Request().Method, c.Path()}]
}

// checkParameters refuses malformed query pairs, query parameters that the
// operation does not declare, and repeated ones that it does not declare as
// lists: silently ignoring them would answer a misspelt "cursor" or filter
// with the wrong page. It does the same for headers (see checkHeaders).
func (info *operationInfo) checkParameters(r *http.Request, query url.Values) *queryError {
	qe := &queryError{}
	info.checkHeaders(r.Header, qe)
	malformed(r.URL.RawQuery, qe)
	for name, values := range query {
		repeatable, known := info.query[name]
		switch {
		case name == "":
			qe.add(name, "has no name: a query pair is name=value")
		case !known:
			qe.add(name, "is not a parameter of this operation"+suggestion(name, info.query))
		case len(values) > 1 && !repeatable:
			qe.add(name, "may be given only once")
		case slices.ContainsFunc(values, unusableText):
			// Text that the database cannot hold in a query (a NUL in a
			// regular expression) or that is not text at all.
			qe.add(name, "must be UTF-8 text without NUL characters")
		}
	}
	if len(qe.fields) == 0 {
		return nil
	}
	slices.SortFunc(qe.fields, func(a, b fieldProblem) int { return strings.Compare(*a.Parameter, *b.Parameter) })
	return qe
}

// listHeaders are the headers whose value is a comma-separated list.
var listHeaders = map[string]bool{"If-Match": true, "If-None-Match": true}

// checkHeaders joins the lines of a list header sent more than once, as RFC
// 9110 section 5.3 says they combine ("If-Match: a" and "If-Match: b" mean
// "If-Match: a, b"; the generated binding refused them as unreadable), and
// refuses any other header the operation reads that comes more than once:
// which of two tokens or Idempotency-Keys counts would be a guess.
func (info *operationInfo) checkHeaders(h http.Header, qe *queryError) {
	for _, name := range info.headers {
		switch values := h[name]; {
		case len(values) < 2:
		case listHeaders[name]:
			h[name] = []string{strings.Join(values, ", ")}
		default:
			qe.add(name, "may be given only once")
		}
	}
}

// malformed adds the pairs of a query string that Go's parser drops, which
// would otherwise go unnoticed: the filter or limit they carry would silently
// not apply.
func malformed(rawQuery string, qe *queryError) {
	for pair := range strings.SplitSeq(rawQuery, "&") {
		key, value, _ := strings.Cut(pair, "=")
		name, keyErr := url.QueryUnescape(key)
		if keyErr != nil {
			name = key
		}
		switch {
		case strings.Contains(pair, ";"):
			qe.add(name, "holds a ';', which does not separate parameters: use '&' (or %3B for the character)")
		case keyErr != nil:
			qe.add(name, "is not a correctly percent-encoded name")
		default:
			if _, err := url.QueryUnescape(value); err != nil {
				qe.add(name, "is not correctly percent-encoded")
			}
		}
	}
}

// errContentEncoding: the body is compressed (or otherwise encoded), which
// the server does not undo; read as it is, it would be refused as malformed
// or, worse, taken for plain JSON.
var errContentEncoding = errors.New("the request body has a content coding")

// errCharset: the body's media type names a character set other than UTF-8,
// which JSON is always in (RFC 8259 section 8.1); read as UTF-8 anyway, its
// text would be stored garbled.
var errCharset = errors.New("the request body is not in UTF-8")

// errContentType: the Content-Type header cannot be read.
var errContentType = errors.New("the Content-Type header is malformed")

// checkBodyEncoding refuses a body sent with a Content-Encoding other than
// identity, or in a charset other than UTF-8 (RFC 9110 section 15.5.16: 415),
// to an operation that reads bodies (others ignore them, and list no 415).
func checkBodyEncoding(r *http.Request, body *openapi3.RequestBodyRef) error {
	if r.Body == http.NoBody || body == nil {
		return nil
	}
	for _, coding := range r.Header.Values("Content-Encoding") {
		for c := range strings.SplitSeq(coding, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return errContentEncoding
			}
		}
	}
	// A media type that the operation does not take is the validator's to
	// refuse. One whose parameters do not parse ("charset=", an open quote)
	// is refused here: the validator would take it, and the form decoder
	// fail on it.
	contentType := r.Header.Get(echo.HeaderContentType)
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil && contentType != "" {
		return errContentType
	}
	if err != nil || body.Value.Content.Get(mediaType) == nil {
		return nil
	}
	if charset, ok := params["charset"]; ok && !slices.ContainsFunc([]string{"utf-8", "utf8", "us-ascii"}, func(utf8 string) bool {
		return strings.EqualFold(charset, utf8) // US-ASCII text is UTF-8 text
	}) {
		return errCharset
	}
	return nil
}

// lowerMediaType writes the body's media type in lower case: it is
// case-insensitive (RFC 9110 section 8.3.1), but the generated handlers of
// operations that take several compare it case-sensitively to pick one, and
// found none for "Application/JSON".
func lowerMediaType(r *http.Request) {
	contentType := r.Header.Get(echo.HeaderContentType)
	mediaType, params, hasParams := strings.Cut(contentType, ";")
	if lower := strings.ToLower(mediaType); lower != mediaType {
		if hasParams {
			lower += ";" + params
		}
		r.Header.Set(echo.HeaderContentType, lower)
	}
}

// suggestion names a declared parameter that differs from name only in case or
// punctuation, the usual misspellings, or says how to send a list that was
// written as PHP, qs and axios write them ("tag[]=a&tag[]=b", "tag[0]=a").
func suggestion(name string, declared map[string]bool) string {
	if base, _, ok := strings.Cut(name, "["); ok && base != "" {
		if repeatable, known := declared[base]; known {
			if repeatable {
				return fmt.Sprintf("; for several values, repeat %s= once for each (%s=a&%s=b)", base, base, base)
			}
			return fmt.Sprintf("; did you mean %q?", base)
		}
	}
	squash := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	for d := range declared {
		if squash(d) == squash(name) {
			return fmt.Sprintf("; did you mean %q?", d)
		}
	}
	return ""
}

// unusableText reports a parameter value that is not valid UTF-8 or holds NUL.
func unusableText(v string) bool { return !utf8.ValidString(v) || strings.ContainsRune(v, 0) }

// queryError reports unknown, repeated or unusable query parameters (and
// repeated headers), and
// what else the validator found (alongside), if anything.
type queryError struct {
	fields    []fieldProblem
	alongside error
}

// add names a parameter once, with its first problem.
func (e *queryError) add(name, detail string) {
	if !slices.ContainsFunc(e.fields, func(f fieldProblem) bool { return *f.Parameter == name }) {
		e.fields = append(e.fields, fieldProblem{Parameter: &name, Detail: detail})
	}
}

func (e *queryError) Error() string { return fmt.Sprintf("%d invalid query parameters", len(e.fields)) }

// authenticator checks the bearer token of a request and returns the context
// that carries the principal.
type authenticator func(ctx context.Context, token string) (context.Context, error)

// Keys on the Echo context. The validator asks for the token check once per
// security scheme that the operation accepts; authResultKey caches a failure.
// A success leaves the context carrying the principal under authContextKey,
// which becomes the request's context once validation is over: replacing the
// request earlier would hide the validated body that the validator leaves on
// the original request.
const (
	authResultKey  = "crm.auth-result"
	authContextKey = "crm.auth-context"
)

// validator returns the OpenAPI request validation middleware: operation
// lookup, query parameter check, then kin-openapi's validation of parameters,
// body and security (whose AuthenticationFunc verifies the token), unless the
// operation's quick check accepts the request on its own (see quickCheck).
//
// The operation is the one Echo's router already found: echo-middleware's own
// router would match the path again with regular expressions, and was the
// largest single cost of a request.
func validator(ops operations, authenticate authenticator) echo.MiddlewareFunc {
	options := validationOptions(authenticate)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			info := ops.lookup(c)
			if info == nil {
				return next(c) // not an operation of the spec: /docs, /metrics, …
			}
			if allow, shadowed := info.shadowedBy(c.Request().URL.Path); shadowed {
				c.Set(echo.ContextKeyHeaderAllow, allow)
				return echo.ErrMethodNotAllowed
			}
			if spansSegments(c) {
				c.SetPath("") // logged and counted as unmatched, as the router's own 404s
				return echo.ErrNotFound
			}
			if err := checkBodyEncoding(c.Request(), info.route.Operation.RequestBody); err != nil {
				return err
			}
			lowerMediaType(c.Request())
			// Echo's parse of the query, which the generated binding reuses.
			queryErr := info.checkParameters(c.Request(), c.QueryParams())
			routed := routedBy{info, pathParams(c)}
			// The validator's errors go untouched to errors.go, beside the
			// query's own: one answer names every invalid parameter.
			var err error // not the *echo.HTTPError it returns: a nil one would not be a nil error
			if queryErr != nil || info.quick == nil || !info.quick.accepts(c, routed.params, authenticate) {
				if httpErr := oapimiddleware.ValidateRequestFromContext(c, routed, options); httpErr != nil {
					err = httpErr
				}
			}
			if queryErr != nil {
				queryErr.alongside = err
				return queryErr
			}
			if err != nil {
				return err
			}
			// Where the token is optional (POST /users), one that was sent
			// and refused still ends the request: the client should sign
			// in again, not be taken for an anonymous caller and told to
			// send a token.
			if refused, ok := c.Get(authResultKey).(error); ok && !errors.Is(refused, api.ErrNoToken) {
				return refused
			}
			if ctx, ok := c.Get(authContextKey).(context.Context); ok {
				c.SetRequest(c.Request().WithContext(ctx))
			}
			return next(c)
		}
	}
}

// validationOptions are kin-openapi's options: every error at once, the
// defaults left to the handlers, and the token checked by authenticate.
func validationOptions(authenticate authenticator) *oapimiddleware.Options {
	return &oapimiddleware.Options{
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusBadRequest, Internal: me}
		},
		Options: openapi3filter.Options{
			MultiError:         true,
			KeepValidatedValue: true,
			// The handlers apply the spec's defaults; kin-openapi would
			// re-parse and re-encode the query string for each of them.
			SkipSettingDefaults: true,
			AuthenticationFunc: func(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
				return authenticateOnce(oapimiddleware.GetEchoContext(ctx), authenticate)
			},
		},
	}
}

// spansSegments reports a path parameter that took more than one segment of
// the path. Echo v4, backtracking from a fixed sibling ("/users/me"), gives
// the rest of the path to the last parameter: "/users/<id>/interactions"
// reached "/users/:id" with the id "<id>/interactions", and was answered that
// the id is malformed rather than that no operation has the path. (An escaped
// slash, %2F, stays escaped in the value and is one segment.)
func spansSegments(c echo.Context) bool {
	return slices.ContainsFunc(c.ParamValues(), func(v string) bool { return strings.Contains(v, "/") })
}

// routedBy hands the validator the operation and path parameters that Echo
// routed the request to.
type routedBy struct {
	info   *operationInfo
	params map[string]string
}

func (r routedBy) FindRoute(*http.Request) (*routers.Route, map[string]string, error) {
	return r.info.route, r.params, nil
}

// pathParams are the request's path parameters by name, unescaped: Echo
// leaves escapes in, and the handlers see the values unescaped.
func pathParams(c echo.Context) map[string]string {
	names := c.ParamNames()
	params := make(map[string]string, len(names))
	for i, name := range names {
		value := c.ParamValues()[i]
		if unescaped, err := url.PathUnescape(value); err == nil {
			value = unescaped
		}
		params[name] = value
	}
	return params
}

// authenticateOnce verifies the request's token once: kin-openapi asks once
// per security scheme the operation accepts, after the quick check may have
// asked. A failure is remembered under authResultKey; a success leaves the
// principal's context under authContextKey.
func authenticateOnce(c echo.Context, authenticate authenticator) error {
	if cached, ok := c.Get(authResultKey).(error); ok {
		return cached
	}
	err := authenticateRequest(c, authenticate)
	if err != nil {
		c.Set(authResultKey, err)
	}
	return err
}

// authenticateRequest verifies the request's bearer token and keeps the context
// carrying the principal for after validation.
func authenticateRequest(c echo.Context, authenticate authenticator) error {
	scheme, token, found := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return api.ErrNoToken
	}
	ctx, err := authenticate(c.Request().Context(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	c.Set(authContextKey, ctx)
	return nil
}

// The string formats kin-openapi checks too loosely:
//   - an email holds no space of any kind: the spec's pattern, read by RE2 (as
//     by most validators outside JavaScript), only excludes ASCII ones, and
//     "ada\u00a0@example.com" would be stored;
//   - kin-openapi checks a date-time's form and its date, not its time of
//     day: 23:59:60, a leap second that Go's time package cannot hold, would
//     pass and then fail to decode, answered as a malformed body instead of
//     naming the field. Parsing it as the handlers will makes the check exact;
//     and the time must also be one that can be answered in UTC.
func init() {
	openapi3.DefineStringFormatValidator("email", openapi3.NewCallbackValidator(func(value string) error {
		if strings.ContainsFunc(value, unicode.IsSpace) {
			return errors.New("an email address holds no spaces")
		}
		return nil
	}))
	form := openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringDateTime)
	openapi3.DefineStringFormatValidator("date-time", openapi3.NewCallbackValidator(func(value string) error {
		if err := form.Validate(value); err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, value)
		if err != nil {
			return err
		}
		// Stored and answered in UTC, where JSON has four digits for the year:
		// 0000-01-01T00:00:00+01:00 would be stored, then fail every answer
		// that holds it.
		if y := t.UTC().Year(); y < 0 || y > 9999 {
			return errors.New("in UTC, the year must be from 0000 to 9999")
		}
		return nil
	}))
}

// loadSpec returns the spec embedded in gen.
func loadSpec() (*openapi3.T, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded OpenAPI spec: %w", err)
	}
	return spec, nil
}
