package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// This file is the one place where errors become HTTP responses: every error —
// from the router, the body limit, the OpenAPI validator, the handlers and the
// store — is answered with an RFC 9457 application/problem+json document.

// kind is one kind of problem: its stable type URI, title and status.
type kind struct {
	slug   string
	title  string
	status int
}

var (
	kindInvalidInput   = kind{"invalid-input", "Invalid input", http.StatusBadRequest}
	kindMalformedBody  = kind{"malformed-body", "Malformed body", http.StatusBadRequest}
	kindUnauthorized   = kind{"unauthorized", "Unauthorized", http.StatusUnauthorized}
	kindBadCredentials = kind{"invalid-credentials", "Invalid credentials", http.StatusUnauthorized}
	// kindBadGrant is kindBadCredentials at the OAuth 2.0 token endpoint,
	// where RFC 6749 (section 5.2) makes it a 400, "invalid_grant": a 401
	// there means the client itself failed to authenticate.
	kindBadGrant         = kind{"invalid-credentials", "Invalid credentials", http.StatusBadRequest}
	kindForbidden        = kind{"forbidden", "Forbidden", http.StatusForbidden}
	kindNotFound         = kind{"not-found", "Not found", http.StatusNotFound}
	kindMethodNotAllowed = kind{"method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed}
	kindDuplicate        = kind{"duplicate", "Already exists", http.StatusConflict}
	kindConflict         = kind{"conflict", "Conflict", http.StatusConflict}
	kindPrecondition     = kind{"precondition-failed", "Precondition failed", http.StatusPreconditionFailed}
	kindTooLarge         = kind{"payload-too-large", "Payload too large", http.StatusRequestEntityTooLarge}
	kindUnsupportedMedia = kind{"unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType}
	kindUnknownReference = kind{"unknown-reference", "Unknown reference", http.StatusUnprocessableEntity}
	kindKeyReuse         = kind{"idempotency-key-reuse", "Idempotency key reused", http.StatusUnprocessableEntity}
	kindTooManyRequests  = kind{"too-many-requests", "Too many requests", http.StatusTooManyRequests}
	kindInternal         = kind{"internal", "Internal server error", http.StatusInternalServerError}
	kindUnavailable      = kind{"unavailable", "Service unavailable", http.StatusServiceUnavailable}
)

// statusClientClosed is for the log and metrics only (nginx's 499): the
// connection ended before the answer (the client hung up, or its request
// stopped coming past the server's read timeout), and the request's failure
// is neither the server's nor the database's. Nothing is sent.
const statusClientClosed = 499

// problemTypePrefix makes a kind's slug its problem type URI.
const problemTypePrefix = "urn:crm:problem:"

// fieldProblem is one entry of a problem's "errors": a parameter, by its name
// (which is empty in "?=x"), or else a member of the body, by its JSON Pointer
// ("" is the whole body).
type fieldProblem struct {
	Pointer   string
	Parameter *string
	Detail    string
}

// problem is a problem document under construction, with the headers that go
// with some kinds.
type problem struct {
	kind    kind
	detail  string
	fields  []fieldProblem
	headers map[string]string
}

// errorHandler is Echo's HTTPErrorHandler.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		p := toProblem(err, c.Path())
		if p.kind == kindBadCredentials && c.Path() == tokenEndpoint {
			p.kind = kindBadGrant
		}
		if errors.Is(c.Request().Context().Err(), context.Canceled) {
			// net/http cancels a request when its connection fails: the
			// client hung up, or its body stopped coming and the read timed
			// out. In neither case is an answer wanted, and the client that
			// is still there gets none: the connection is closed (a 499
			// was sent, a status no client knows). observe records 499.
			c.Response().Status = statusClientClosed
			panic(http.ErrAbortHandler)
		}
		if p.kind.status >= 500 {
			// The client sees a generic detail; the real error goes to the log,
			// found again by the request id.
			attrs := []any{"request_id", requestID(c), "route", c.Path(), "status", p.kind.status, "error", err.Error()}
			if errors.Is(err, context.DeadlineExceeded) {
				attrs = append(attrs, "hint", deadlineHint)
			}
			log.ErrorContext(c.Request().Context(), "request failed", attrs...)
		}
		if c.Response().Committed {
			return
		}
		if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok && p.kind == kindMethodNotAllowed {
			c.Response().Header().Set(echo.HeaderAllow, withHead(allow)) // see headAsGet
		}
		writeProblem(c, p)
	}
}

// deadlineHint tells the operator reading a timed-out request's log line the
// two causes apart: a database that does not answer looks the same, to the
// request, as one operation that takes longer than it may.
const deadlineHint = "the database did not answer within the time one operation may take (CRM_DB_TIMEOUT): " +
	"if /readyz answers 200, this operation takes longer, as lists and counts of large collections do on the embedded engine: " +
	"raise CRM_DB_TIMEOUT, or move to MongoDB"

// maxListedFields is the most invalid fields a problem lists (the spec's
// maxItems of Problem.errors).
const maxListedFields = 50

// tokenEndpoint is the route of the OAuth 2.0 token endpoint.
const tokenEndpoint = "/auth/token"

// notInEnum starts the detail of a value that is not one of its schema's.
const notInEnum = "must be one of: "

// oauthError is RFC 6749's error code (section 5.2) for a problem of the
// token endpoint: a grant type given once and unknown is unsupported; one
// missing, empty or repeated makes the request invalid.
func oauthError(p problem) string {
	switch {
	case p.kind == kindBadGrant:
		return "invalid_grant"
	case slices.ContainsFunc(p.fields, func(f fieldProblem) bool {
		return f.Pointer == "/grant_type" && strings.HasPrefix(f.Detail, notInEnum)
	}):
		return "unsupported_grant_type"
	case p.kind.status >= 500:
		return "server_error"
	default:
		return "invalid_request"
	}
}

func writeProblem(c echo.Context, p problem) {
	doc := gen.Problem{
		Type:      problemTypePrefix + p.kind.slug,
		Title:     p.kind.title,
		Status:    p.kind.status,
		Detail:    &p.detail,
		Instance:  ptr(c.Request().URL.EscapedPath()), // a URI reference: the path as sent
		RequestId: ptr(requestID(c)),
	}
	if len(p.fields) > 0 {
		// The count is in the detail; listing 90,000 unknown members of a
		// 1 MiB body would answer it with 6 MB.
		errs := make([]gen.FieldError, min(len(p.fields), maxListedFields))
		for i, f := range p.fields[:len(errs)] {
			errs[i] = gen.FieldError{Detail: f.Detail, Parameter: f.Parameter}
			if f.Parameter == nil {
				errs[i].Pointer = &f.Pointer
			}
		}
		doc.Errors = &errs
	}
	if c.Path() == tokenEndpoint {
		// What OAuth 2.0 clients show of a failed grant (Swagger UI's
		// Authorize dialog showed only "Unauthorized").
		doc.Error, doc.ErrorDescription = ptr(oauthError(p)), &p.detail
	}
	h := c.Response().Header()
	for k, v := range p.headers {
		h.Set(k, v)
	}
	h.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.kind.status)
	_ = json.NewEncoder(c.Response()).Encode(doc)
}

// toProblem classifies err, from a request to route (the template Echo
// matched, which names the kind of record a missing id or a taken email is
// of). The checks run in order, most specific first; errors.AsType keeps the
// common case free of allocations.
func toProblem(err error, route string) problem {
	// Errors from the validator: their cause is in HTTPError.Internal.
	if security, ok := errors.AsType[*openapi3filter.SecurityRequirementsError](err); ok {
		return securityProblem(security, route)
	}
	if multi, ok := errors.AsType[openapi3.MultiError](err); ok {
		return validationProblem(multi, route)
	}
	if requestErr, ok := errors.AsType[*openapi3filter.RequestError](err); ok {
		return validationProblem(openapi3.MultiError{requestErr}, route)
	}
	if errors.Is(err, errContentEncoding) {
		return problem{kind: kindUnsupportedMedia, detail: "Send the body without a Content-Encoding: it is not decompressed.",
			headers: map[string]string{"Accept-Encoding": "identity"}}
	}
	if errors.Is(err, errContentType) {
		return problem{kind: kindUnsupportedMedia, detail: "The Content-Type header cannot be read (a parameter without a value, or an open quote): send application/json (application/x-www-form-urlencoded to /auth/token)."}
	}
	if errors.Is(err, errCharset) {
		return problem{kind: kindUnsupportedMedia, detail: "Send the body in UTF-8: no other charset is read."}
	}
	if query, ok := errors.AsType[*queryError](err); ok {
		fields := query.fields
		if query.alongside != nil {
			other := toProblem(query.alongside, route)
			if other.kind != kindInvalidInput {
				return other // no token, a body too large, …: answered first
			}
			fields = firstPerField(append(fields, other.fields...))
		}
		return invalidInput(fields)
	}

	// Errors from the handlers.
	if invalid, ok := errors.AsType[*api.InvalidError](err); ok {
		return invalidInput(fieldProblems(invalid.Fields))
	}
	if errors.Is(err, api.ErrInvalidCredentials) {
		return problem{kind: kindBadCredentials, detail: "The credentials are wrong, expired or revoked, or the account is deactivated."}
	}
	if errors.Is(err, api.ErrUnauthenticated) || errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, api.ErrNoToken) {
		return unauthorized(err)
	}
	if forbidden, ok := errors.AsType[*api.ForbiddenError](err); ok {
		return problem{kind: kindForbidden, detail: forbidden.Detail}
	}
	if conflict, ok := errors.AsType[*api.ConflictError](err); ok {
		return problem{kind: kindConflict, detail: conflict.Detail}
	}
	if unprocessable, ok := errors.AsType[*api.UnprocessableError](err); ok {
		k := kindUnknownReference
		if unprocessable.Kind == kindKeyReuse.slug {
			k = kindKeyReuse
		}
		return problem{kind: k, detail: unprocessable.Detail, fields: fieldProblems(unprocessable.Fields)}
	}
	if precondition, ok := errors.AsType[*api.PreconditionFailedError](err); ok {
		return problem{kind: kindPrecondition, detail: precondition.Detail}
	}
	if throttled, ok := errors.AsType[*api.TooManyRequestsError](err); ok {
		secs := int(throttled.RetryAfter.Seconds() + 0.999)
		return problem{kind: kindTooManyRequests, detail: "Too many failed attempts; try again later.",
			headers: map[string]string{"Retry-After": strconv.Itoa(max(secs, 1))}}
	}

	// Errors from the store.
	if referenced, ok := errors.AsType[*store.ReferencedError](err); ok {
		return problem{kind: kindConflict, detail: "The record is still referenced by " + referenced.By + "."}
	}
	if missing := missingReferences(err); len(missing) > 0 {
		p := problem{kind: kindUnknownReference, detail: "The request refers to records that do not exist."}
		if len(missing) == 1 {
			p.detail = "The request refers to a " + missing[0].Record + " that does not exist."
		}
		for _, m := range missing {
			p.fields = append(p.fields, fieldProblem{Pointer: "/" + m.Field, Detail: "refers to no existing " + m.Record})
		}
		return p
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem{kind: kindNotFound, detail: "No " + recordOf(route) + " has this id."}
	case errors.Is(err, store.ErrDuplicate):
		record := recordOf(route)
		return problem{kind: kindDuplicate, detail: "A " + record + " with this email already exists: GET /" + record + "s?email=… finds it.",
			fields: []fieldProblem{{Pointer: "/email", Detail: "is already taken"}}}
	case errors.Is(err, store.ErrStale):
		return problem{kind: kindPrecondition, detail: "The record changed since you read it; read it again."}
	case errors.Is(err, store.ErrLastAdmin):
		return problem{kind: kindConflict, detail: "This would leave no active admin; make another user an admin first."}
	case errors.Is(err, api.ErrBusy):
		return problem{kind: kindUnavailable, detail: "The record is being changed by many requests at once; retry shortly.",
			headers: map[string]string{"Retry-After": "1"}}
	case errors.Is(err, auth.ErrBusy):
		return problem{kind: kindUnavailable, detail: "Too many sign-ins are being checked at once; retry shortly.",
			headers: map[string]string{"Retry-After": "1"}}
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return problem{kind: kindUnavailable, detail: "The database is busy or not answering; try again shortly.",
			headers: map[string]string{"Retry-After": "5"}}
	}

	// Errors from Echo itself: router, body limit.
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		return httpProblem(he)
	}
	return problem{kind: kindInternal, detail: "Something went wrong on our side; the request id finds it in the log."}
}

// missingReferences lists every missing reference that err holds: the store
// joins them, so that one answer names them all.
func missingReferences(err error) []*store.MissingReferenceError {
	if m, ok := err.(*store.MissingReferenceError); ok {
		return []*store.MissingReferenceError{m}
	}
	var out []*store.MissingReferenceError
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			out = append(out, missingReferences(inner)...)
		}
	case interface{ Unwrap() error }:
		out = missingReferences(e.Unwrap())
	}
	return out
}

// recordOf names the kind of record a route is about: the one its id names,
// or that it creates.
func recordOf(route string) string {
	switch {
	case strings.HasPrefix(route, "/interactions/customer/"), strings.HasPrefix(route, "/customers"):
		return "customer"
	case strings.HasPrefix(route, "/interactions"):
		return "interaction"
	case strings.HasPrefix(route, "/users"):
		return "user"
	}
	return "record"
}

// fieldProblems converts the handlers' field list.
func fieldProblems(in []api.FieldError) []fieldProblem {
	out := make([]fieldProblem, len(in))
	for i, f := range in {
		out[i] = fieldProblem{Pointer: f.Pointer, Parameter: nonEmpty(f.Parameter), Detail: f.Detail}
	}
	return out
}

// unauthorized is the 401 for a missing or unusable access token.
func unauthorized(err error) problem {
	challenge := `Bearer realm="crm"`
	detail := "This operation needs a bearer token: sign in at POST /users/login."
	if !errors.Is(err, api.ErrNoToken) {
		challenge += `, error="invalid_token"`
		detail = "The bearer token is invalid, expired or revoked; sign in again."
	}
	return problem{kind: kindUnauthorized, detail: detail, headers: map[string]string{"WWW-Authenticate": challenge}}
}

// securityProblem answers a request that met none of the operation's security
// requirements: 401 for a missing or refused token; otherwise the token check
// itself failed (the database could not be asked, or the user's record could
// not be read), which is the server's problem, not the client's.
func securityProblem(e *openapi3filter.SecurityRequirementsError, route string) problem {
	for _, inner := range e.Errors {
		if !errors.Is(inner, api.ErrNoToken) && !errors.Is(inner, auth.ErrInvalidToken) && !errors.Is(inner, api.ErrUnauthenticated) {
			return toProblem(inner, route)
		}
	}
	for _, inner := range e.Errors {
		if !errors.Is(inner, api.ErrNoToken) {
			return unauthorized(inner)
		}
	}
	return unauthorized(api.ErrNoToken)
}

// httpProblem maps Echo's own errors.
func httpProblem(he *echo.HTTPError) problem {
	if inner, ok := he.Internal.(*echo.HTTPError); ok {
		he = inner
	}
	switch he.Code {
	case http.StatusNotFound:
		return problem{kind: kindNotFound, detail: "No operation has this path; see /openapi.yaml or /docs."}
	case http.StatusMethodNotAllowed:
		return problem{kind: kindMethodNotAllowed, detail: "This path does not support this method; the Allow header lists those it does."}
	case http.StatusRequestEntityTooLarge:
		return problem{kind: kindTooLarge, detail: "The request body is larger than 1 MiB."}
	case http.StatusUnsupportedMediaType:
		return problem{kind: kindUnsupportedMedia, detail: "Send the body as application/json."}
	case http.StatusBadRequest:
		return problem{kind: kindMalformedBody, detail: "The request could not be read."}
	case http.StatusUnauthorized:
		return unauthorized(api.ErrNoToken)
	case http.StatusServiceUnavailable:
		return problem{kind: kindUnavailable, detail: "The server is busy; try again shortly.", headers: map[string]string{"Retry-After": "1"}}
	default:
		return problem{kind: kindInternal, detail: "Something went wrong on our side; the request id finds it in the log."}
	}
}

// validationProblem turns kin-openapi's request errors into one problem listing
// every invalid field. Some errors are not about a field: an oversized or
// unreadable body, or a content type the operation does not accept.
func validationProblem(errs openapi3.MultiError, route string) problem {
	var fields []fieldProblem
	for _, err := range errs {
		var re *openapi3filter.RequestError
		if !errors.As(err, &re) {
			return toProblem(err, route)
		}
		var he *echo.HTTPError
		var member *bodyMemberError
		switch {
		case errors.As(re.Err, &he):
			return httpProblem(he) // the body limit, hit while reading the body
		case re.RequestBody != nil && strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
			return problem{kind: kindUnsupportedMedia, detail: "Send the body as " + mediaTypes(re.RequestBody) + "."}
		case re.RequestBody != nil && errors.As(re.Err, &member):
			fields = append(fields, fieldProblem{Pointer: member.pointer, Detail: member.detail})
		case re.RequestBody != nil && re.Reason == "failed to decode request body":
			return problem{kind: kindMalformedBody, detail: malformedBodyDetail(re.Err)}
		case re.RequestBody != nil && errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
			fields = append(fields, fieldProblem{Pointer: "", Detail: "a request body is required"})
		case re.Parameter != nil:
			fields = append(fields, parameterProblems(re)...)
		case re.RequestBody != nil:
			fields = append(fields, schemaProblems(re.Err, "")...)
		default:
			fields = append(fields, fieldProblem{Detail: re.Error()})
		}
	}
	return invalidInput(firstPerField(fields))
}

// malformedBodyDetail says what is wrong with a body that could not be
// decoded, and where: the client's JSON library rarely says.
func malformedBodyDetail(err error) string {
	var parse *openapi3filter.ParseError
	if errors.As(err, &parse) {
		err = parse.RootCause()
	}
	var syntax *json.SyntaxError
	var escape url.EscapeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("The body is not valid JSON: %s (at byte %d).", syntax, syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "The body is not valid JSON: it ends before its value does."
	case errors.Is(err, errByteOrderMark):
		return "The body starts with a byte order mark (U+FEFF); send it without one."
	case errors.Is(err, errTrailingData):
		return "The body is not valid JSON: it holds more after its first value; send one value."
	case errors.As(err, &escape):
		return "The body is not a valid form: " + escape.Error() + "."
	}
	return "The body could not be read as JSON or as a form."
}

// firstPerField keeps one problem per field: an empty name breaks both minLength
// and pattern, and the client needs to hear it once.
func firstPerField(fields []fieldProblem) []fieldProblem {
	seen := map[string]bool{}
	out := fields[:0]
	for _, f := range fields {
		key := f.Pointer
		if f.Parameter != nil {
			key = "?" + *f.Parameter // a pointer is "" or starts with "/"
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, f)
		}
	}
	return out
}

// invalidInput is the 400 listing fields, whose detail counts them and says
// what they are: "The request has 2 invalid parameters."
func invalidInput(fields []fieldProblem) problem {
	return problem{kind: kindInvalidInput, detail: countDetail(len(fields), whatIsInvalid(fields)), fields: fields}
}

// whatIsInvalid names what fields are: body fields, parameters, or both (values).
func whatIsInvalid(fields []fieldProblem) string {
	params := 0
	for _, f := range fields {
		if f.Parameter != nil {
			params++
		}
	}
	switch params {
	case 0:
		return "field"
	case len(fields):
		return "parameter"
	}
	return "value" // a body field and a parameter
}

func countDetail(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("The request has 1 invalid %s.", what)
	}
	return fmt.Sprintf("The request has %d invalid %ss.", n, what)
}

func parameterProblems(re *openapi3filter.RequestError) []fieldProblem {
	name := re.Parameter.Name
	var parse *openapi3filter.ParseError
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return []fieldProblem{{Parameter: &name, Detail: "is required"}}
	case errors.Is(re.Err, openapi3filter.ErrInvalidEmptyValue):
		return []fieldProblem{{Parameter: &name, Detail: "must not be empty"}}
	case errors.As(re.Err, &parse):
		return []fieldProblem{{Parameter: &name, Detail: "must be " + describeType(re.Parameter.Schema)}}
	}
	problems := schemaProblems(re.Err, "")
	for i := range problems {
		problems[i] = fieldProblem{Parameter: &name, Detail: problems[i].Detail}
	}
	if se, ok := errors.AsType[*openapi3.SchemaError](re.Err); ok && len(problems) > 0 {
		problems[0].Detail = parameterHint(name, re.Parameter.Schema.Value, se, problems[0].Detail)
	}
	if len(problems) == 0 {
		problems = []fieldProblem{{Parameter: &name, Detail: "is invalid"}}
	}
	return problems
}

// describeType names what a parameter's schema expects, for "must be …".
func describeType(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return "a valid value"
	}
	s := ref.Value
	switch {
	case s.Type.Is(openapi3.TypeInteger), s.Type.Is(openapi3.TypeNumber):
		return describeRange(s)
	case s.Type.Is(openapi3.TypeBoolean):
		return "true or false"
	}
	return "a valid value"
}

// describeRange names a numeric schema's kind and bounds: "an integer from 1
// to 200", "a number of at least 0".
func describeRange(s *openapi3.Schema) string {
	kind := "a number"
	if s.Type.Is(openapi3.TypeInteger) {
		kind = "an integer"
	}
	switch {
	case s.Min != nil && s.Max != nil:
		return fmt.Sprintf("%s from %g to %g", kind, *s.Min, *s.Max)
	case s.Min != nil:
		return fmt.Sprintf("%s of at least %g", kind, *s.Min)
	case s.Max != nil:
		return fmt.Sprintf("%s of at most %g", kind, *s.Max)
	}
	return kind
}

var propertyInReason = regexp.MustCompile(`^property "(.*)" is (missing|unsupported)$`)

// schemaProblems lists the schema violations in err, each with the JSON Pointer
// of the offending member under base.
func schemaProblems(err error, base string) []fieldProblem {
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		var out []fieldProblem
		for _, e := range multi {
			out = append(out, schemaProblems(e, base)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if !errors.As(err, &se) {
		return []fieldProblem{{Pointer: base, Detail: "is invalid"}}
	}
	pointer := base
	for _, token := range se.JSONPointer() {
		pointer += "/" + escapePointer(token)
	}
	detail := schemaDetail(se)
	if se.Value == nil && se.Schema != nil && !se.Schema.Nullable && se.SchemaField != "required" {
		detail = "cannot be null" // not "must be one of: …" for an enum
	}
	if m := propertyInReason.FindStringSubmatch(se.Reason); m != nil {
		// A missing property's pointer already ends with its name; an
		// unsupported one's ends at the object.
		if token := "/" + escapePointer(m[1]); !strings.HasSuffix(pointer, token) {
			pointer += token
		}
		detail = map[string]string{"missing": "is required", "unsupported": "is not a field of this request"}[m[2]]
	}
	return []fieldProblem{{Pointer: pointer, Detail: detail}}
}

// schemaDetail words a schema violation for the client. It never repeats the
// value, which may be a secret (a password that is too short, say).
func schemaDetail(se *openapi3.SchemaError) string {
	s := se.Schema
	// An id too short, too long or not hex: the client needs the same answer.
	if s != nil && s.Pattern == objectIDPattern && slices.Contains([]string{"pattern", "minLength", "maxLength"}, se.SchemaField) {
		return "must be an id: 24 lower-case hex digits"
	}
	switch se.SchemaField {
	case "pattern", "format":
		switch {
		case s != nil && s.Format == "email":
			return "must be an email address"
		case s != nil && s.Format == "date-time":
			return "must be an RFC 3339 date-time such as 2026-11-26T09:30:00Z" + dateTimeHint(se.Value)
		case s != nil && s.Pattern == `\S`:
			return "must not be blank"
		case s != nil && s.Pattern != "":
			return "must match the pattern " + s.Pattern
		}
	case "enum":
		if s != nil {
			vals := make([]string, len(s.Enum))
			for i, v := range s.Enum {
				vals[i] = fmt.Sprint(v)
			}
			if se.Value == "" {
				// Sent empty: missing rather than unknown (RFC 6749 section
				// 3.1 reads an empty grant_type as none at all).
				return "must not be empty: one of " + strings.Join(vals, ", ")
			}
			return notInEnum + strings.Join(vals, ", ")
		}
	case "minimum", "maximum":
		// One wording for every value out of range, and the same as for a
		// value that is not a number at all.
		if s != nil && (s.Min != nil || s.Max != nil) {
			return "must be " + describeRange(s)
		}
	case "nullable":
		return "cannot be null"
	case "minProperties":
		if s != nil && s.MinProps == 1 {
			return "must name at least one field to change"
		}
	case "minLength":
		if s != nil && s.MinLength == 1 {
			return "must not be empty"
		}
		if s != nil {
			return fmt.Sprintf("must be at least %d characters long", s.MinLength)
		}
	case "maxLength":
		if s != nil && s.MaxLength != nil {
			return fmt.Sprintf("must be at most %d characters long", *s.MaxLength)
		}
	case "type":
		if s != nil && s.Type != nil {
			return "must be " + articleFor(strings.Join(s.Type.Slice(), " or "))
		}
	}
	return se.Reason
}

// parameterHint adds to the detail of a refused parameter the likeliest
// slip, when there is one: several values joined by commas where the
// parameter is to be repeated, or a "+" sent unencoded in a query string,
// where it means a space (an email's, a date-time's offset).
func parameterHint(name string, schema *openapi3.Schema, se *openapi3.SchemaError, detail string) string {
	value, _ := se.Value.(string)
	isArray := schema.Type.Is(openapi3.TypeArray)
	switch {
	case isArray && se.SchemaField == "maxItems":
		return fmt.Sprintf("may be given at most %d times", *schema.MaxItems)
	case isArray && strings.Contains(value, ","):
		return detail + fmt.Sprintf("; for several, repeat the parameter: %s=…&%s=…", name, name)
	case strings.Contains(value, " ") && se.Schema != nil && se.Schema.VisitJSON(strings.ReplaceAll(value, " ", "+")) == nil:
		return detail + `; a "+" in a query string means a space: send it as %2B`
	}
	return detail
}

// dateTimeHint says why a date-time that RFC 3339 allows was refused: a
// lower-case "t" or "z", or a year that UTC puts outside 0000–9999 (see the
// format's validator in validate.go).
func dateTimeHint(value any) string {
	text, _ := value.(string)
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(text))
	switch {
	case err != nil:
		return ""
	case strings.ContainsAny(text, "tz"):
		return `; write "T" and "Z" in upper case`
	case t.UTC().Year() < 0 || t.UTC().Year() > 9999:
		return "; in UTC, its year must be from 0000 to 9999"
	}
	return ""
}

// objectIDPattern is the spec's pattern for ids.
const objectIDPattern = `^[0-9a-f]{24}$`

func articleFor(typ string) string {
	switch typ {
	case "object", "array", "integer":
		return "an " + typ
	}
	return "a " + typ
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901).
func escapePointer(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// mediaTypes lists the content types a request body accepts.
func mediaTypes(body *openapi3.RequestBody) string {
	types := make([]string, 0, len(body.Content))
	for t := range body.Content {
		types = append(types, t)
	}
	slices.Sort(types)
	return strings.Join(types, " or ")
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ptr[T any](v T) *T { return &v }
