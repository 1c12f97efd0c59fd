// Package server assembles the HTTP server: Echo with the middleware chain,
// OpenAPI request validation over the embedded spec (the JWT check is its
// AuthenticationFunc), the generated strict handlers over package api, the
// mapping of every error to RFC 9457 problem documents (errors.go), and the
// routes outside the API proper: the spec, Swagger UI, probes and metrics.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// Config holds what the server needs.
type Config struct {
	Handler *api.Handler
	Store   *store.Store // for Idempotency-Key records
	Logger  *slog.Logger
	// Metrics are served at /metrics; nil makes a fresh set.
	Metrics *Metrics
	// CORSOrigins lists the browser origins allowed to call the API from other
	// sites ("https://crm.example.com"); empty disables CORS.
	CORSOrigins []string
	// TrustedProxies lists the networks (CIDR) of reverse proxies whose
	// X-Forwarded-For names the client; empty trusts no header and uses the
	// connection's address.
	TrustedProxies []*net.IPNet
}

// New returns the CRM's HTTP handler.
func New(cfg Config) (http.Handler, error) {
	e, err := newEcho(cfg)
	if err != nil {
		return nil, err
	}
	return withCleanPath(headAsGet(e)), nil
}

// newEcho assembles Echo with every route.
func newEcho(cfg Config) (*echo.Echo, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	spec, err := loadSpec()
	if err != nil {
		return nil, err
	}
	specJSON, err := specJSON(gen.SpecYAML)
	if err != nil {
		return nil, fmt.Errorf("convert the spec to JSON: %w", err)
	}
	ops := indexOperations(spec)
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = NewMetrics()
	}
	if cfg.Handler != nil {
		metrics.countPasswordHashes(cfg.Handler.PasswordHashes)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.IPExtractor = clientIPExtractor(cfg.TrustedProxies)
	e.Use(composed(
		recoverMiddleware(log),
		requestIDMiddleware,
		observe(log, metrics),
		securityHeaders,
		cors(cfg.CORSOrigins),
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
			Limit: bodyLimit,
			// Nothing to limit; wrapped, an empty body would be read and
			// copied by the validator like any other.
			Skipper: func(c echo.Context) bool { return c.Request().Body == http.NoBody },
		}),
		requestInfoMiddleware,
		validator(ops, func(ctx context.Context, token string) (context.Context, error) {
			p, err := cfg.Handler.Authenticate(ctx, token)
			if err != nil {
				return nil, err
			}
			return api.WithPrincipal(ctx, p), nil
		}),
		idempotency(cfg.Store, ops, log),
	))

	gen.RegisterHandlers(e, gen.NewStrictHandler(cfg.Handler, nil))

	if err := registerDocs(e, specJSON, cfg.TrustedProxies); err != nil {
		return nil, err
	}
	e.GET("/metrics", metrics.handler())
	return e, nil
}

// composed chains middleware once, at start-up, for Echo.Use. Echo v4 chains
// what Use is given anew for every request, a closure per middleware; this
// chain ends in the handler that Echo's router found for the request, which
// is the next handler Use would have passed.
func composed(chain ...echo.MiddlewareFunc) echo.MiddlewareFunc {
	h := func(c echo.Context) error { return c.Handler()(c) }
	for i := len(chain) - 1; i >= 0; i-- {
		h = chain[i](h)
	}
	return func(echo.HandlerFunc) echo.HandlerFunc { return h }
}

// headAsGet answers HEAD as GET (RFC 9110 section 9.3.2: a general-purpose
// server supports HEAD wherever it supports GET). Routing, the token check
// and validation see a GET; net/http sends the headers, with the length of
// the body, and drops the body itself. The log and metrics say HEAD.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodHead:
			r = r.Clone(context.WithValue(r.Context(), headKey{}, true))
			r.Method = http.MethodGet
		case http.MethodOptions:
			w = allowHead{w} // Echo's answer lists the routes' methods
		}
		next.ServeHTTP(w, r)
	})
}

// allowHead adds HEAD to an Allow header that lists GET.
type allowHead struct{ http.ResponseWriter }

func (w allowHead) WriteHeader(code int) {
	if allow := w.Header().Get("Allow"); allow != "" {
		w.Header().Set("Allow", withHead(allow))
	}
	w.ResponseWriter.WriteHeader(code)
}

// withHead is a list of allowed methods with HEAD wherever GET is.
func withHead(allow string) string {
	if strings.Contains(allow, http.MethodGet) && !strings.Contains(allow, http.MethodHead) {
		return allow + ", " + http.MethodHead
	}
	return allow
}

func (w allowHead) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type headKey struct{}

// requestMethod is the method the client sent (see headAsGet).
func requestMethod(r *http.Request) string {
	if head, _ := r.Context().Value(headKey{}).(bool); head {
		return http.MethodHead
	}
	return r.Method
}

// withCleanPath lets "/customers/" reach the same operation as "/customers",
// and so "//customers": a base URL that ends in a slash ("http://host:8080/"),
// joined to a path that starts with one, as nginx's merge_slashes would; and
// "/%63ustomers" too, an unreserved character percent-encoded, which RFC 3986
// (section 6.2.2.2) says is the same path (Echo routes on the path as sent).
// It wraps Echo instead of being Echo "pre" middleware, which Echo v4 would
// chain anew for every request.
func withCleanPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, raw := cleanPath(r.URL.Path), cleanPath(unreservedDecoded(r.URL.RawPath))
		if p != r.URL.Path || raw != r.URL.RawPath {
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = p, raw
			if raw == p {
				r.URL.RawPath = "" // nothing left escaped: the path as Go keeps it
			}
			r.RequestURI = r.URL.RequestURI()
		}
		next.ServeHTTP(w, r)
	})
}

// unreservedDecoded decodes the escapes of unreserved characters (letters,
// digits, "-", ".", "_", "~") in a path as sent, and keeps the others: "%2F"
// is a slash inside a segment, not a separator.
func unreservedDecoded(raw string) string {
	if !strings.Contains(raw, "%") {
		return raw
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) {
			if c, err := strconv.ParseUint(raw[i+1:i+3], 16, 8); err == nil && unreserved(byte(c)) {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// cleanPath merges repeated slashes and drops a trailing one.
func cleanPath(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p
}

// clientIPExtractor decides where the client's address comes from. By default
// it is the connection's: a header any client can write must not decide whom
// login throttling counts.
func clientIPExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// cors allows the configured origins to call the API from a browser, with the
// headers the API reads and the ones a client needs to see. Without origins it
// does nothing: browsers then keep other sites out.
func cors(origins []string) echo.MiddlewareFunc {
	if len(origins) == 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, "If-Match", "If-None-Match", "Idempotency-Key", echo.HeaderXRequestID},
		ExposeHeaders: []string{"ETag", echo.HeaderLocation, "Link", echo.HeaderXRequestID, echo.HeaderRetryAfter,
			echo.HeaderWWWAuthenticate, "Idempotent-Replayed", "Deprecation"},
		MaxAge: 600,
	})
}

// bodyLimit is the largest request body accepted: 1 MiB (413 beyond).
const bodyLimit = "1MiB" // "1M" would be 1,000,000 bytes to Echo
