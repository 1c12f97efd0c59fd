// Package server assembles the HTTP server: Echo with the middleware chain,
// OpenAPI request validation over the embedded spec (the JWT check is its
// AuthenticationFunc), the generated strict handlers over package api, the
// mapping of every error to RFC 9457 problem documents (errors.go), and the
// routes outside the API proper: the spec, Swagger UI, probes and metrics.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

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
}

// New returns the CRM's HTTP handler.
func New(cfg Config) (http.Handler, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	spec, err := loadSpec()
	if err != nil {
		return nil, err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	ops := indexOperations(spec)

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	// "/customers/" reaches the same operation as "/customers".
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(
		recoverMiddleware(log),
		requestIDMiddleware,
		accessLog(log),
		securityHeaders,
		middleware.BodyLimit(bodyLimit),
		requestURLMiddleware,
		validator(spec, ops, func(ctx context.Context, token string) (context.Context, error) {
			p, err := cfg.Handler.Authenticate(ctx, token)
			if err != nil {
				return nil, err
			}
			return api.WithPrincipal(ctx, p), nil
		}),
		idempotency(cfg.Store, ops, log),
	)

	gen.RegisterHandlers(e, gen.NewStrictHandler(cfg.Handler, nil))

	registerDocs(e, specJSON)
	return e, nil
}

// bodyLimit is the largest request body accepted: 1 MiB (413 beyond).
const bodyLimit = "1M"
