package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/store"
)

// Idempotency-Key support for the operations that create (POST /users,
// /customers, /interactions): a retry with the same key and body gets the first
// response again — status, body, Location, ETag — without creating again, also
// when the retries arrive while the first request is still running.

const (
	idempotencyHeader = "Idempotency-Key"
	replayedHeader    = "Idempotent-Replayed"
	// idempotencyTTL is how long a key is remembered once its request is answered.
	idempotencyTTL = 24 * time.Hour
	// idempotencyRunLimit bounds the first request with a key: its context
	// ends then, so its database operations stop. A minute is what the
	// server's WriteTimeout (60 s, server/cli) leaves a handler anyway: a
	// response written later never reaches the client.
	idempotencyRunLimit = time.Minute
	// idempotencyAbandonedAfter: a key still pending this long after its
	// first request began was abandoned — the process died, or storing the
	// outcome failed. Whether that request created its record is unknown, so
	// the key is never run again (that could create it twice); its retries
	// are told so at once instead of waiting for a request that is over. It
	// is the run limit plus a minute: for operations the store lets finish
	// after a cancellation (an undo, each bounded by CRM_DB_TIMEOUT, 5 s by
	// default) and for clocks of API processes sharing a database that
	// disagree.
	idempotencyAbandonedAfter = idempotencyRunLimit + time.Minute
	// idempotencyWait bounds how long a retry waits for the first request with
	// its key to finish before giving up with 409.
	idempotencyWait = 10 * time.Second
	idempotencyPoll = 25 * time.Millisecond
)

// replayedResponseHeaders are the headers a replay repeats.
var replayedResponseHeaders = []string{echo.HeaderContentType, echo.HeaderLocation, "ETag"}

// errKeyInProgress: the first request with this key is still running.
var errKeyInProgress = &api.ConflictError{Detail: "A request with this Idempotency-Key is still being processed; retry shortly."}

// errKeyAbandoned: the first request with this key failed or never finished.
var errKeyAbandoned = &api.ConflictError{Detail: "The first request with this Idempotency-Key did not finish (the server failed or restarted while handling it), " +
	"so whether it created its record is unknown: look for the record, and if it is not there, send the request again with a new key."}

// idempotency runs after validation, when the principal (part of the key's
// scope) and the validated body are known.
func idempotency(st *store.Store, ops operations, log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			key := req.Header.Get(idempotencyHeader)
			info := ops.lookup(c)
			if key == "" || info == nil || !info.idempotent {
				return next(c)
			}
			scope := "anonymous"
			if p := api.PrincipalFrom(req.Context()); p != nil {
				scope = p.IDHex
			}
			// A key names one intended request of one user: the same key on
			// another operation is a client's mistake, refused like the same
			// key with another body.
			recordKey := fingerprint(scope, key)
			requestHash := fingerprint(req.Method, c.Path(), bodyFingerprint(req))

			deadline := time.Now().Add(idempotencyWait)
			for {
				claim, existing, err := st.ClaimIdempotencyKey(req.Context(), recordKey, requestHash, idempotencyTTL)
				switch {
				case err != nil:
					return err
				case claim != nil:
					return handleFirst(c, st, log, *claim, next)
				case existing.RequestHash != requestHash:
					return &api.UnprocessableError{Kind: "idempotency-key-reuse",
						Detail: "This Idempotency-Key was used with a different request (another body or operation); use a new key for a new request.",
						Fields: []api.FieldError{{Parameter: idempotencyHeader, Detail: "was used before with another request"}}}
				case existing.Done():
					return replay(c, existing)
				case existing.Failed() || time.Since(existing.CreatedAt) > idempotencyAbandonedAfter:
					return errKeyAbandoned
				case time.Now().After(deadline):
					return errKeyInProgress
				}
				select {
				case <-req.Context().Done():
					return req.Context().Err()
				case <-time.After(idempotencyPoll):
				}
			}
		}
	}
}

// handleFirst runs the request that claimed the key and stores its response if
// it created something; otherwise it releases the key, so that a retry runs
// again (nothing was created that a retry could duplicate).
func handleFirst(c echo.Context, st *store.Store, log *slog.Logger, claim store.IdempotencyClaim, next echo.HandlerFunc) error {
	req := c.Request()
	// Record the outcome even if the client has gone: its retry will come.
	// (Each store operation has its own timeout.)
	ctx := context.WithoutCancel(req.Context())
	runCtx, cancel := context.WithTimeout(req.Context(), idempotencyRunLimit)
	c.SetRequest(req.WithContext(runCtx))
	rec := &recorder{ResponseWriter: c.Response().Writer}
	c.Response().Writer = rec
	defer func() {
		cancel()
		// The middleware before this one sees the request's own context
		// again, not the run limit's, which is over now.
		c.SetRequest(c.Request().WithContext(req.Context()))
		c.Response().Writer = rec.ResponseWriter
		if r := recover(); r != nil {
			// The handler panicked, perhaps after creating its record: the
			// key is never run again, and its retries are told at once that
			// the outcome is unknown (rather than waiting for a request that
			// is over). Then panic on, for the recovery middleware to answer
			// 500 and log it.
			if err := st.FailIdempotencyKey(ctx, claim); err != nil {
				log.ErrorContext(ctx, "recording the failure of a request with an Idempotency-Key that panicked", "request_id", requestID(c), "error", err)
			}
			panic(r)
		}
	}()
	err := next(c)

	status := c.Response().Status
	if err != nil || status < 200 || status > 299 {
		if releaseErr := st.ReleaseIdempotencyKey(ctx, claim); releaseErr != nil && err == nil {
			err = releaseErr
		}
		return err
	}
	headers := map[string]string{}
	for _, h := range replayedResponseHeaders {
		if v := c.Response().Header().Get(h); v != "" {
			headers[h] = v
		}
	}
	// The response is out; failing to store it means that a retry finds the
	// key pending and, once the request is clearly over, is told that its
	// outcome is unknown (errKeyAbandoned), which the log should say.
	if err := st.CompleteIdempotencyKey(ctx, claim, idempotencyTTL, status, headers, rec.body.Bytes()); err != nil {
		log.ErrorContext(ctx, "storing a response for idempotent replay", "request_id", requestID(c), "error", err)
	}
	return nil
}

func replay(c echo.Context, rec *store.IdempotencyRecord) error {
	h := c.Response().Header()
	for k, v := range rec.Headers {
		h.Set(k, v)
	}
	h.Set(replayedHeader, "true")
	c.Response().WriteHeader(rec.Status)
	_, err := c.Response().Write(rec.Body)
	return err
}

// bodyFingerprint is the request body as validated, re-encoded so that
// whitespace and member order do not matter; the raw bytes otherwise.
func bodyFingerprint(req *http.Request) string {
	if vb, ok := req.Body.(interface{ ValidatedValue() any }); ok {
		if b, err := json.Marshal(vb.ValidatedValue()); err == nil {
			return string(b)
		}
	}
	if req.GetBody != nil {
		if r, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(r)
			return string(b)
		}
	}
	return ""
}

// fingerprint hashes its parts, unambiguously separated.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recorder copies what the handler writes, for replay.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
