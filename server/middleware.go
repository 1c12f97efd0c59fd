package server

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/opencrm/crm/api"
)

const requestIDKey = "crm.request-id"

// validRequestID accepts the request ids of common proxies and tracing systems
// and nothing that could forge or break a log line.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestIDMiddleware honours a well-formed X-Request-ID from the client (or a
// proxy) or generates one, and echoes it in the response.
func requestIDMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID.MatchString(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// newRequestID returns 24 random hex digits. A request id must be unique, not
// unpredictable: the runtime's generator (math/rand/v2, seeded from the
// system's) is enough, and unlike crypto/rand it costs no system call.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// observe writes one JSON access-log line per request once it is answered —
// request id, method, route template, status, latency, sizes and the signed-in
// user — and counts it in the metrics. It never logs bodies, query strings or
// headers, where passwords and tokens live.
func observe(log *slog.Logger, metrics *Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			start := time.Now()
			defer func() {
				if r := recover(); r != nil {
					// Record the request that panicked, then let recovery
					// answer it. One abandoned by its connection (see
					// errorHandler) is recorded as 499.
					status := http.StatusInternalServerError
					if r == http.ErrAbortHandler && c.Response().Status == statusClientClosed {
						status = statusClientClosed
					}
					record(log, metrics, c, start, status)
					panic(r)
				}
			}()
			if err = next(c); err != nil {
				c.Error(err) // answer now, so that the status is known
			}
			record(log, metrics, c, start, c.Response().Status)
			return nil
		}
	}
}

func record(log *slog.Logger, metrics *Metrics, c echo.Context, start time.Time, status int) {
	took := time.Since(start)
	req := c.Request()
	route := routeOf(c)
	method := requestMethod(req)
	metrics.observeRequest(route, methodLabel(method), status, took)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	h := log.Handler()
	if !h.Enabled(req.Context(), level) {
		return
	}
	// A record made here rather than by log.LogAttrs skips looking up the
	// caller's source line, which no handler of ours prints.
	r := slog.NewRecord(time.Now(), level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", requestID(c)),
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		// An integer: slog's JSON handler writes a float through
		// encoding/json, a reflection-driven encoder that otherwise no
		// lookup by id touches, whose cost showed beside a lookup's.
		slog.Int64("duration_us", took.Microseconds()),
		slog.Int64("bytes_in", max(req.ContentLength, 0)),
		slog.Int64("bytes_out", c.Response().Size),
		slog.String("remote_ip", c.RealIP()),
	)
	if p := api.PrincipalFrom(req.Context()); p != nil {
		r.AddAttrs(slog.String("user_id", p.IDHex))
	}
	_ = h.Handle(req.Context(), r)
}

// routeOf is the route template the request matched ("/customers/:id"), or a
// fixed placeholder: the raw path would put ids and junk in logs and metrics.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" && p != "/*" {
		return p
	}
	return "unmatched"
}

// recoverMiddleware turns a panic into a 500 and logs it with its stack.
func recoverMiddleware(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					log.ErrorContext(c.Request().Context(), "panic", "request_id", requestID(c),
						"route", routeOf(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = fmt.Errorf("panic: %v", r)
					c.Error(err)
					err = nil
				}
			}()
			return next(c)
		}
	}
}

// securityHeaders sets the headers every response carries. API responses may
// not be framed, sniffed or run as a page, and authenticated ones not cached.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		// Shared, never-modified value slices: Header.Set would allocate one
		// per header per response.
		h["X-Content-Type-Options"] = nosniff
		h["Referrer-Policy"] = noReferrer
		h["Cross-Origin-Resource-Policy"] = sameOrigin
		if !isDocsRoute(c.Path()) {
			h["Content-Security-Policy"] = apiCSP
			h["X-Frame-Options"] = deny
		}
		if c.Request().Header.Get(echo.HeaderAuthorization) != "" {
			h["Cache-Control"] = noStore
		}
		return next(c)
	}
}

var (
	nosniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	sameOrigin = []string{"same-origin"}
	apiCSP     = []string{"default-src 'none'; frame-ancestors 'none'"}
	deny       = []string{"DENY"}
	noStore    = []string{"no-store"}
)

// requestInfoMiddleware puts the request URL and the client's address in the
// request's context, for the handlers' Link headers and login throttling.
func requestInfoMiddleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		c.SetRequest(req.WithContext(api.WithRequestInfo(req.Context(), req.URL, c.RealIP())))
		return next(c)
	}
}
