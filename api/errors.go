package api

import (
	"errors"
	"fmt"
	"time"
)

// Errors that handlers return for server/errors.go to turn into problem
// documents. Handlers never write error responses themselves; store errors
// (store.ErrNotFound, …) are returned as they are and mapped there too.
var (
	// ErrUnauthenticated: no valid access token (401).
	ErrUnauthenticated = errors.New("authentication required")
	// ErrNoToken: the request carries no access token at all (401, without
	// the "invalid_token" of a token refused).
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidCredentials: wrong email or password, deactivated account, or an
	// unusable refresh token (401).
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrBusy: a record is being changed by so many requests at once that this
	// one gave up retrying (503, try again shortly).
	ErrBusy = errors.New("the record is busy")
)

// FieldError names one invalid field of the body (Pointer, a JSON Pointer) or one
// invalid parameter (Parameter).
type FieldError struct {
	Pointer   string
	Parameter string
	Detail    string
}

// InvalidError is a 400: the request is well-formed JSON but breaks a rule that
// the spec's schemas cannot express. Fields says which (the problem's detail
// counts them, as for the validator's 400s).
type InvalidError struct {
	Fields []FieldError
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid input: %d fields", len(e.Fields)) }

func invalidParameter(name, detail string) *InvalidError {
	return &InvalidError{Fields: []FieldError{{Parameter: name, Detail: detail}}}
}

func invalidField(pointer, detail string) *InvalidError {
	return &InvalidError{Fields: []FieldError{{Pointer: pointer, Detail: detail}}}
}

// ForbiddenError is a 403: authenticated, but the role or ownership does not
// allow the operation. Detail says what would be allowed.
type ForbiddenError struct{ Detail string }

func (e *ForbiddenError) Error() string { return "forbidden: " + e.Detail }

func forbidden(format string, args ...any) *ForbiddenError {
	return &ForbiddenError{Detail: fmt.Sprintf(format, args...)}
}

// ConflictError is a 409 that is not a duplicate email: the record is still
// referenced, or the change would remove the last admin.
type ConflictError struct{ Detail string }

func (e *ConflictError) Error() string { return "conflict: " + e.Detail }

// UnprocessableError is a 422: the request refers to a record that does not
// exist, or reuses an idempotency key with another body.
type UnprocessableError struct {
	Kind   string // "unknown-reference" or "idempotency-key-reuse"
	Detail string
	Fields []FieldError
}

func (e *UnprocessableError) Error() string { return "unprocessable: " + e.Detail }

// PreconditionFailedError is a 412: If-Match names a version that is not the
// current one.
type PreconditionFailedError struct{ Detail string }

func (e *PreconditionFailedError) Error() string { return "precondition failed: " + e.Detail }

// TooManyRequestsError is a 429 with the time after which to try again.
type TooManyRequestsError struct{ RetryAfter time.Duration }

func (e *TooManyRequestsError) Error() string {
	return fmt.Sprintf("too many attempts; retry after %s", e.RetryAfter)
}
